"""The `costflow` subcommands that run a team's cost platform from its config (issue 12).

Each module registers one subcommand: ``add_parser(sub)`` declares its flags and ``run(args)``
returns the exit status. `costflow.cli` lists them explicitly (no discovery), so the command
line stays one readable place; heavy imports (Beam, SDKs) happen inside ``run`` only, so
``costflow --help`` stays fast.
"""
