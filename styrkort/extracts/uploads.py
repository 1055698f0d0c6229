"""The upload handler that writes extract files straight to a private directory.

Why a handler of our own: Django keeps small uploads in memory and spools large ones to the
system's temporary directory. An extract holds health data (and, if a region makes a mistake, a
personal identity number), so the extract upload page and the extract upload API stream every
file chunk by chunk into a private directory (mode 0700, files 0600) under
``settings.UPLOAD_DIR`` instead, where the job reads it and deletes it after validation.

It is listed first in ``settings.FILE_UPLOAD_HANDLERS`` and is active only for those two views
(by URL name); for every other request it passes the data on to Django's own handlers. A file it
wrote and nobody moved away (a refused request, a form error) is deleted when Django closes the
request's files at the end of the response.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

from styrkort.extracts.schema import TABLE_NAMES

ACTIVE_VIEWS = frozenset({"extracts:upload", "api:extracts_upload"})
INCOMING_PREFIX = ".incoming-"


def new_incoming_dir() -> Path:
    """A fresh private directory for one request's files (mkdtemp makes it 0700)."""
    root = Path(settings.UPLOAD_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=INCOMING_PREFIX, dir=root))


class PrivateUploadedFile(UploadedFile):
    """An uploaded file already on disk in a private directory (``private_path``)."""

    def __init__(self, path: Path, name: str, content_type: str, size: int, charset) -> None:
        super().__init__(path.open("rb"), name, content_type, size, charset)
        self.private_path = path

    def close(self):
        try:
            return super().close()
        finally:
            # Still here: nobody took it over (a refusal or a form error), so it goes.
            self.private_path.unlink(missing_ok=True)
            # Not empty (another file of the request) or already gone: left to the others.
            with contextlib.suppress(OSError):
                self.private_path.parent.rmdir()


class PrivateUploadHandler(FileUploadHandler):
    """Write each file field named after an extract table to ``<incoming dir>/<table>``.

    Other file fields of an extract upload are skipped. Nothing is kept in memory beyond one
    chunk. :meth:`discard` removes the directory with whatever is left in it.
    """

    def __init__(self, request=None) -> None:
        super().__init__(request)
        match = getattr(request, "resolver_match", None)
        self.active = match is not None and match.view_name in ACTIVE_VIEWS
        self.dir: Path | None = None
        self._path: Path | None = None
        self._out = None

    def new_file(self, field_name, file_name, content_type, content_length, charset=None,
                 content_type_extra=None):  # fmt: skip
        super().new_file(
            field_name, file_name, content_type, content_length, charset, content_type_extra
        )
        self._out = None
        if not self.active:
            return
        if field_name not in TABLE_NAMES:
            raise SkipFile()
        if self.dir is None:
            self.dir = new_incoming_dir()
        path = self.dir / field_name
        if path.exists():
            raise SkipFile()  # the same table twice: the first file counts
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._out = os.fdopen(fd, "wb")
        self._path = path

    def receive_data_chunk(self, raw_data, start):
        if self._out is None:
            return raw_data  # not ours: Django's handlers take it
        self._out.write(raw_data)
        return None

    def file_complete(self, file_size):
        if self._out is None:
            return None
        self._out.close()
        self._out = None
        return PrivateUploadedFile(
            self._path, self.file_name or "", self.content_type, file_size, self.charset
        )

    def upload_interrupted(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        self.discard()

    def discard(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
