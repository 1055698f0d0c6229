from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve Styrkort with waitress, with a job poller thread unless a worker runs separately."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, *args, host: str, port: int, threads: int, **options):
        from waitress import serve

        from styrkort.jobs.services import start_poller_thread
        from styrkort.wsgi import application

        call_command("migrate", interactive=False, verbosity=0)
        if settings.STYRKORT_JOBS == "poller":
            start_poller_thread()
        self.stdout.write(f"Styrkort on http://{host}:{port}/  (Ctrl-C stops)")
        serve(application, host=host, port=port, threads=threads, ident="styrkort")
