"""Real gpiozero devices through the remoteio pin factory, against a server on
the simulated board."""
import time

import pytest
from gpiozero import (LED, PWMLED, RGBLED, AngularServo, Button, Device, DigitalInputDevice,
                      DistanceSensor, Motor, Servo, TrafficLights)
from gpiozero.exc import GPIOPinInUse, PinFixedPull, PinInvalidPin, PinInvalidPull, PinSetInput

from remoteio.gpiozero_factory import RemoteIOFactory
from remoteio.server import Server

from remoteio.testing import free_port, levels, wait_until


@pytest.fixture
def factory(server):
    factory = RemoteIOFactory(*server.address)
    yield factory
    factory.close()


def count_round_trips(factory):
    """The requests the factory's connection sends from now on (one round trip each)."""
    calls = []
    link = factory.server.live_link()
    original = link.request

    def counting(op, fields, timeout):
        calls.append(op)
        return original(op, fields, timeout)
    link.request = counting
    return calls


def test_led_on_is_one_round_trip(server, factory):
    led = LED(17, pin_factory=factory)
    calls = count_round_trips(factory)
    led.on()
    assert calls == ["set"]
    assert server.sim.value("GPIO17") == 1.0 and led.is_lit
    led.off()
    assert server.sim.value("GPIO17") == 0.0
    led.toggle()
    assert server.sim.value("GPIO17") == 1.0
    assert calls == ["set", "set", "set"]         # the state is remembered, not asked for


def test_pwmled_value_is_one_round_trip_and_pulses(server, factory):
    led = PWMLED(18, pin_factory=factory)
    calls = count_round_trips(factory)
    led.value = 0.3
    assert calls == ["set"]
    assert server.sim.value("GPIO18") == pytest.approx(0.3)
    assert server.sim.frequency("GPIO18") == 100
    led.pulse(fade_in_time=0.1, fade_out_time=0.1, n=1, background=False)
    values = levels(server.sim.history("GPIO18"))
    assert any(0.2 < v < 0.8 for v in values) and values[-1] == 0.0


def test_a_button_on_a_fixed_pull_up_pin_is_made_at_the_first_try(server, factory):
    """GPIO2/3 have a fixed pull-up and a Button asks for one: gpiozero sets the
    function first, with no pull, which must not be taken as 'floating'."""
    button = Button(3, pin_factory=factory)
    device = DigitalInputDevice(2, pull_up=True, pin_factory=factory)
    assert server.sim.pull("GPIO3") == server.sim.pull("GPIO2") == "up"
    assert not button.is_pressed and device.pin.state == 1 and not device.is_active
    server.sim.drive("GPIO3", 0)
    assert wait_until(lambda: button.is_pressed)
    button.close()
    device.close()


def test_button_pull_bounce_and_a_callback_that_calls_the_server(server, factory):
    led = LED(17, pin_factory=factory)
    button = Button(27, pull_up=True, bounce_time=0.01, pin_factory=factory)
    assert server.sim.pull("GPIO27") == "up" and not button.is_pressed
    button.when_pressed = led.toggle              # runs on the dispatcher: may call the server
    server.sim.drive("GPIO27", 0)
    assert wait_until(lambda: server.sim.value("GPIO17") == 1.0)
    assert button.is_pressed
    server.sim.drive("GPIO27", None)
    assert wait_until(lambda: not button.is_pressed)
    time.sleep(0.05)
    server.sim.drive("GPIO27", 0)
    assert wait_until(lambda: server.sim.value("GPIO17") == 0.0)
    assert button.wait_for_press(timeout=1)


def test_button_pull_down(server, factory):
    button = Button(22, pull_up=False, pin_factory=factory)
    assert server.sim.pull("GPIO22") == "down"
    server.sim.drive("GPIO22", 1)
    assert wait_until(lambda: button.is_pressed)


def test_servo_and_angular_servo(server, factory):
    servo = Servo(12, pin_factory=factory)
    servo.min()
    assert server.sim.frequency("GPIO12") == 50      # 20 ms frames
    assert server.sim.value("GPIO12") == pytest.approx(1 / 20)
    servo.max()
    assert server.sim.value("GPIO12") == pytest.approx(2 / 20)
    angular = AngularServo(13, min_angle=-90, max_angle=90, pin_factory=factory)
    angular.angle = 0
    assert server.sim.value("GPIO13") == pytest.approx(1.5 / 20)
    assert angular.angle == pytest.approx(0, abs=0.5)


def test_motor(server, factory):
    motor = Motor(forward=23, backward=24, pin_factory=factory)
    motor.forward(0.5)
    assert server.sim.value("GPIO23") == pytest.approx(0.5) and server.sim.value("GPIO24") == 0.0
    motor.backward()
    assert server.sim.value("GPIO23") == 0.0 and server.sim.value("GPIO24") == 1.0
    motor.stop()
    assert server.sim.value("GPIO24") == 0.0


def test_rgbled_and_traffic_lights_take_the_factory(server, factory):
    rgb = RGBLED(red=5, green=6, blue=13, pin_factory=factory)
    rgb.color = (1, 0.5, 0)
    assert (server.sim.value("GPIO5"), server.sim.value("GPIO6"), server.sim.value("GPIO13")) == \
        (1.0, pytest.approx(0.5), 0.0)
    lights = TrafficLights(red=16, amber=20, green=21, pin_factory=factory)
    lights.amber.on()
    assert server.sim.value("GPIO20") == 1.0 and lights.value == (0, 1, 0)


def test_distance_sensor_times_the_echo_with_the_pis_clock(server, factory):
    server.sim.echo(trigger="GPIO23", echo="GPIO24", width_us=2915.45)  # 0.5 m at 343 m/s
    sensor = DistanceSensor(echo=24, trigger=23, max_distance=2, pin_factory=factory)
    try:
        assert sensor.distance == pytest.approx(0.5, abs=0.005)
    finally:
        sensor.close()


def test_ticks_follow_the_servers_clock(server, factory):
    server_ns = factory.server.request("ping")["time_ns"]
    assert abs(factory.ticks() - server_ns / 1e9) < 0.05
    assert factory.ticks_diff(2.5, 1.0) == 1.5


def test_gpiozero_names_all_work(server, factory):
    pins = {name: factory.pin(name) for name in ("GPIO17", "BOARD11", "J8:11", "WPI0", "BCM17", 17)}
    assert len({id(pin) for pin in pins.values()}) == 1
    assert factory.board_info.model == "5B"


def test_errors_are_gpiozeros_own(server, factory):
    button = Button(27, pin_factory=factory)
    with pytest.raises(PinSetInput):
        button.pin.state = 1
    with pytest.raises(PinInvalidPull):
        button.pin.pull = "sideways"
    with pytest.raises(PinFixedPull):
        factory.pin("GPIO2").input_with_pull("down")
    with pytest.raises(GPIOPinInUse):
        LED(27, pin_factory=factory)
    with pytest.raises(PinInvalidPin, match="mcp9"):   # an expander the server does not have
        LED("mcp9:A3", pin_factory=factory)
    other = RemoteIOFactory(*server.address)
    try:
        with pytest.raises(GPIOPinInUse):        # held by the first client on the server
            LED(27, pin_factory=other).on()
    finally:
        other.close()


@pytest.mark.parametrize("bounce", ["foo", -1, float("nan"), object()])
def test_a_bad_bounce_time_is_gpiozeros_value_error(server, factory, bounce):
    from gpiozero.exc import PinInvalidBounce
    with pytest.raises(PinInvalidBounce) as raised:
        DigitalInputDevice(4, bounce_time=bounce, pin_factory=factory)
    assert isinstance(raised.value, ValueError)
    device = DigitalInputDevice(4, bounce_time=0.02, pin_factory=factory)  # the pin is free
    assert device.pin.bounce == pytest.approx(0.02)
    device.close()


def test_the_environment_selects_the_factory(server, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "remoteio")
    monkeypatch.setenv("REMOTEIO_HOST", server.address[0])
    monkeypatch.setenv("REMOTEIO_PORT", str(server.port))
    saved, Device.pin_factory = Device.pin_factory, None
    try:
        led = LED(17)
        assert isinstance(Device.pin_factory, RemoteIOFactory)
        led.on()
        assert server.sim.value("GPIO17") == 1.0
        led.close()
        Device.pin_factory.close()
    finally:
        Device.pin_factory = saved


@pytest.mark.parametrize("text", ["abc", "0", "70000"])
def test_a_bad_port_in_the_environment_is_named_before_any_connection(monkeypatch, text):
    monkeypatch.setenv("REMOTEIO_PORT", text)
    with pytest.raises(ValueError, match=f"REMOTEIO_PORT='{text}': a port is"):
        RemoteIOFactory("127.0.0.1")


def test_closing_never_hangs_or_raises_when_the_link_is_dead():
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        factory = RemoteIOFactory(*server.address, timeout=1.0, reconnect=False)
        try:
            led, pwm = LED(17, pin_factory=factory), PWMLED(18, pin_factory=factory)
            button = Button(27, pin_factory=factory)
            button.when_pressed = led.on
            server.stop()
            assert wait_until(lambda: not factory.server.connected, timeout=5)
            started = time.monotonic()
            for device in (led, pwm, button):
                device.close()
        finally:
            factory.close()
        assert time.monotonic() - started < 2


def test_a_reconnect_gives_gpiozero_pins_their_setup_back():
    port = free_port()
    first = Server(host="127.0.0.1", port=port, backend="sim").start()
    try:
        factory = RemoteIOFactory("127.0.0.1", port, heartbeat=0.5)
        led, dim = LED(17, pin_factory=factory), PWMLED(18, pin_factory=factory)
        button = Button(27, pull_up=False, pin_factory=factory)
        led.on()
        dim.value = 0.25
        first.stop()
        assert wait_until(lambda: not factory.server.connected, timeout=5)
        second = Server(host="127.0.0.1", port=port, backend="sim").start()
        try:
            assert factory.server.wait_connected(timeout=10)
            assert wait_until(lambda: second.sim.value("GPIO17") == 1.0, timeout=5)
            assert second.sim.value("GPIO18") == pytest.approx(0.25)
            assert second.sim.frequency("GPIO18") == 100
            assert second.sim.function("GPIO27") == "input" and second.sim.pull("GPIO27") == "down"
            second.sim.drive("GPIO27", 1)
            assert wait_until(lambda: button.is_pressed, timeout=5)
        finally:
            for device in (led, dim, button):
                device.close()
            factory.close()
            second.stop()
    finally:
        first.stop()
