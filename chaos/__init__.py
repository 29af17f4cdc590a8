"""The chaos suite: many runs of a 3-step flow across several orchestrator and service
processes while processes are SIGKILLed and broker connections are cut, then an audit of
every run (``python -m chaos --help``; docs/reliability.md)."""
