"""Test double for tpu-info (no TPU on test machines): `device.get_local_chips()` and
`metrics.get_chip_usage()`, driven by env FAKE_TPU_CHIPS (chip count, default 0) and
FAKE_TPU_HBM_USED (bytes used per chip, default 0)."""
