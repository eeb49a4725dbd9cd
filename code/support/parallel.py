"""Dask for the model search: a cluster to run trials on, and a compile folder per worker.

:mod:`dltutorials.model_selection` runs each trial of a search as a Dask
task.  What it needs from Dask is here, so that the page shows the search:

* :func:`connect`: a ``distributed.Client`` on a local cluster started for
  the search (worker processes with one thread each; Dask's nanny sets the
  BLAS and OpenMP threads of each to 1), or on a running scheduler given
  by its address, with a clear error within seconds when nothing answers;
* :func:`use_own_compile_folder`: called by a trial before the engine is
  imported in the worker process, so that workers do not share a compile
  folder (see its docstring for why).

Dask (the ``distributed`` package) is an optional dependency:
``pip install -e '.[search]'``.
"""
import hashlib
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from dltutorials.support import engine_setup
from dltutorials.support.errors import TutorialError

logger = logging.getLogger(__name__)

#: Seconds to wait for a scheduler given by address before saying nothing answers.
CONNECT_TIMEOUT = 5

_slot_lock = []     # the open lock file of this process's compile slot, held while it lives


def require_dask():
    """Import ``distributed``, or say in one line how to install it."""
    try:
        import distributed
    except ImportError:
        raise TutorialError("model selection runs on Dask, which is not installed: "
                            "pip install -e '.[search]' (or pip install distributed)") from None
    return distributed


def connect(scheduler=None, n_workers=None):
    """A ``distributed.Client``: on the scheduler at ``scheduler``, or on a new local cluster.

    The local cluster has ``n_workers`` worker processes (default: one per
    core), one thread each, and no dashboard; it stops with the client
    (``client.close()``, or the end of the process).  Raises TutorialError
    when no scheduler answers at ``scheduler`` within :data:`CONNECT_TIMEOUT`.
    """
    distributed = require_dask()
    if scheduler is None:
        # Ctrl-C in a terminal reaches every process of the command: the workers are
        # started ignoring it (their training would die with a traceback each), and
        # the search, which gets it too, stops them.  The dashboard's port: any free one.
        interrupt = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            cluster = distributed.LocalCluster(
                n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1,
                processes=True, dashboard_address=':0', silence_logs=logging.ERROR)
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, interrupt)
        client = distributed.Client(cluster)
        client.owns_cluster = cluster
        return client
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError, TypeError) as err:
        # (Dask's timeout is an OSError; a malformed address a ValueError or TypeError.)
        raise TutorialError('no Dask scheduler answered at %s within %d s (%s)'
                            % (scheduler, CONNECT_TIMEOUT, str(err).split('\n')[0])) from None
    client.owns_cluster = None
    return client


def disconnect(client):
    """Close ``client`` and the local cluster it started, if any."""
    cluster = getattr(client, 'owns_cluster', None)
    client.close()
    if cluster is not None:
        cluster.close()


def n_workers(client):
    """How many workers the scheduler has now (at least 1: trials wait for one)."""
    return max(1, len(client.scheduler_info().get('workers', {})))


def use_own_compile_folder(environ=os.environ):
    """Make this process compile into a folder no other running worker uses; return its name.

    Theano and PyTensor keep compiled C code in a folder shared by every
    process of a user (``~/.theano/compiledir_...``).  Processes that share
    it compile one at a time under the engine's lock (held for a whole
    function's compilation, and waited for in sleeps of several seconds),
    and the cache's clean-up in one process has been seen to delete modules
    another had just compiled.  Each worker therefore takes a numbered slot
    (an exclusive lock on a file, released by the operating system when the
    process ends, even killed) and compiles into the usual folder with
    ``-worker<slot>`` added to its name.  Slots are reused, so a later
    search finds its workers' folders already filled: only the first search
    on a machine pays for compiling (13 s for the MLP with Theano, 20 s with
    PyTensor, measured here).

    Does nothing (returns None) once the engine is imported, or where the
    user set the compile folder itself (``compiledir``): their setting wins.
    """
    engine = engine_setup.engine_name(environ)
    if engine in sys.modules or engine_setup.user_has_set('compiledir', environ, engine):
        return None
    variable = engine_setup.ENGINES[engine][0]
    flags = engine_setup.parse_theano_flags(environ.get(variable, ''))
    folder_format = flags.get('compiledir_format', DEFAULT_COMPILEDIR_FORMAT)
    slot = _take_slot(':'.join((engine, flags.get('base_compiledir', ''), folder_format)))
    own_format = '%s-worker%d' % (folder_format, slot)
    environ[variable] = ','.join(part for part in (
        environ.get(variable, ''), 'compiledir_format=' + own_format) if part)
    return own_format


#: The engines' default name for the compile folder inside ``~/.theano`` or ``~/.pytensor``.
DEFAULT_COMPILEDIR_FORMAT = ('compiledir_%(short_platform)s-%(processor)s-%(python_version)s-'
                             '%(python_bitwidth)s')


def _take_slot(folder_name):
    """The lowest slot number of ``folder_name`` no living process holds; held until this ends."""
    try:
        import fcntl
    except ImportError:         # (Windows: a folder per process instead)
        return os.getpid()
    folder = Path(tempfile.gettempdir()) / 'dltutorials-compile-slots'
    folder.mkdir(exist_ok=True)
    slot = 0
    while True:
        name = hashlib.sha256(folder_name.encode('utf-8')).hexdigest()[:16]
        lock = open(folder / ('%s-%d.lock' % (name, slot)), 'a')
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            slot += 1
            continue
        _slot_lock.append(lock)
        return slot
