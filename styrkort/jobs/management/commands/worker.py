from django.core.management.base import BaseCommand

from styrkort.jobs.services import run_pending, work_forever


class Command(BaseCommand):
    help = "Work the background job queue (imports, computations, reports)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run queued jobs, then exit")

    def handle(self, *args, once: bool = False, **options):
        if once:
            ran = run_pending()
            self.stdout.write(f"Ran {ran} job(s).")
            return
        self.stdout.write("Working the job queue; Ctrl-C stops.")
        work_forever()
