"""MQTT for Home Assistant, Node-RED and friends, over the embedded nats-server's MQTT
listener: retained visitor state, a last will, and Home Assistant discovery."""

from streamproc.mqtt.bridge import MqttBridge, MqttUnavailableError
from streamproc.mqtt.topics import StreamTopics

__all__ = ["MqttBridge", "MqttUnavailableError", "StreamTopics"]
