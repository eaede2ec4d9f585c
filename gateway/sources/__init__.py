"""Radio sources of the gateway: each turns what it hears (Semtech UDP, LNS MQTT) into contract Uplinks."""
