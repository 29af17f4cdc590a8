"""orch_serv 0.2 programs, unchanged: the message, a service and a stepper (the orchestrator
and its flows are in ``flows/legacy02.py``). See docs/migrating-from-0.2.md."""
