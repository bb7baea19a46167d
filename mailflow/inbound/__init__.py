"""Inbound mail: receiving, understanding and recording bounces, complaints and replies."""
