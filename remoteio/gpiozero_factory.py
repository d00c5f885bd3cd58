"""The documented short name of remoteio's gpiozero pin factory (it lives in remoteio.client)."""
from .client.gpiozero_factory import RemoteIOFactory, RemoteIOPin

__all__ = ["RemoteIOFactory", "RemoteIOPin"]
