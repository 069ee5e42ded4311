"""The shared test harness: scripted people over the emulator (driver.py) and the conversations
several tiers share (helpers.py). Used by tests/inprocess and tests/e2e."""
