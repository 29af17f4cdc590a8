"""``python -m orch_serv`` is the ``orch-serv`` command."""

from orch_serv.cli import main

main()
