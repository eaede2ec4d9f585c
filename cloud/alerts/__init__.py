"""Alerts to crews: rules per town (`config`), pure evaluation (`rules`) and life cycle (`engine`), and the thin
shell that stores them and delivers them over MQTT, webhooks and e-mail (`service`, `channels`)."""
