"""orch_serv 0.2's in-process programming model (messages, blocks, flows, orchestrators,
services) and the bridge that runs it distributed. The 0.2 module paths (``orch_serv.msg``,
``orch_serv.orchestrator``, ``orch_serv.service``, ``orch_serv.stepper``, ``orch_serv.exc``)
re-export what is defined here."""
