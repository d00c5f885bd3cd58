"""Bridges from a remoteio server to the rest of a house or a plant.

- :mod:`.mqtt`: the MQTT bridge (``remoteio mqtt``, or ``[mqtt]`` in the
  server's configuration): a remoteio *client* that puts a Pi's pins on an
  MQTT broker, with Home Assistant discovery (docs/mqtt.md).
- :mod:`.discovery`: ``_remoteio._tcp`` on the LAN with mDNS/DNS-SD: the
  server's advertiser and the browser behind ``remoteio discover`` and
  :meth:`RemoteServer.discover` (docs/discovery.md).

The pure parts have their own modules, tested without a broker or a network:
:mod:`.settings` (the ``[mqtt]`` configuration), :mod:`.topics` (topic names,
payload parsing and rendering) and :mod:`.hass` (Home Assistant discovery
payloads). paho-mqtt and zeroconf are optional (the ``mqtt`` and
``discovery`` extras) and imported only where they are used.
"""
