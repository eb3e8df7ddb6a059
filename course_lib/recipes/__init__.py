"""Cached, reusable artefacts one lesson builds and another reuses, keyed by the code they depend on."""
