"""Fixtures shared by every test area. Area conftests start the services they need with
:func:`tests.support.running_platform`."""
