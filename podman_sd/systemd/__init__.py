"""Adapters to systemd: the D-Bus manager API, sd_notify and the journal."""
