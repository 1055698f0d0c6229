"""The `styrkort` command: every batch job of the system, as management commands.

`styrkort demo`, `styrkort serve`, `styrkort import-units FILE`, `styrkort compute`, … are the
Django management commands of the same names with dashes; `styrkort --help` lists them.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "styrkort.settings")
    argv = list(sys.argv if argv is None else argv)
    if len(argv) > 1 and argv[1] == "demo":
        # The demo is served over plain http on 127.0.0.1, where secure cookies would not stick.
        os.environ.setdefault("STYRKORT_INSECURE_HTTP", "1")
    import django
    from django.core.management import execute_from_command_line, get_commands

    django.setup()
    if len(argv) < 2 or argv[1] in {"-h", "--help", "help"}:
        _print_help(get_commands())
        return 0
    command = argv[1].replace("-", "_")
    execute_from_command_line([argv[0], command, *argv[2:]])
    return 0


def _print_help(commands: dict[str, str]) -> None:
    from django.core.management import load_command_class

    print("usage: styrkort COMMAND [options]   (styrkort COMMAND --help for details)\n")
    print("Commands:")
    for name, app in sorted(commands.items()):
        if not app.startswith("styrkort"):
            continue
        help_text = load_command_class(app, name).help.splitlines()[0]
        print(f"  {name.replace('_', '-'):<22} {help_text}")
    print("\nDjango's own commands (migrate, createsuperuser, …) work too.")


if __name__ == "__main__":
    sys.exit(main())
