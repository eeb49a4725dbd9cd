"""Music as piano rolls: Bach's chorales from music21's corpus, MIDI files in and out.

A piano roll is a binary matrix (n_steps, n_pitches): row t says which
pitches sound during time step t, column j is MIDI pitch ``r[0] + j``.

The chorales are the 371 four-part chorales of music21's corpus, in
Riemenschneider's numbering (``music21.corpus.chorales.Iterator``), read at
one step per quarter note (a shorter note fills the step it starts in).
They are split by chorale, in that numbering: numbers 4, 9, 14 ... (every
fifth, from the fourth) validate, 5, 10, 15 ... test, the rest train.  The
piano rolls are built once (a minute) and cached in ``data/`` as
``bach_chorales.npz``, with the SHA-256 of their contents, checked at every
load.

MIDI files (Nottingham's, or one's own) are read at ``dt`` seconds per step,
as the original tutorial read them, and generated rolls are written back
at the same rate, with mido.  music21 (the corpus) and mido are optional
dependencies (``pip install -e '.[music]'``); without music21, the cached
chorales still load.
"""
import hashlib
import logging
from pathlib import Path

import numpy

from dltutorials.support.datasets import DATA_DIR
from dltutorials.support.errors import DatasetError
from dltutorials.support.model_files import read_params, save_params

logger = logging.getLogger(__name__)

CHORALES = 'bach-chorales'
CHORALES_FILE = 'bach_chorales.npz'
CACHE_FORMAT = 'dltutorials piano rolls 1'
#: Every fifth chorale validates, the next one tests (by position in Riemenschneider's order).
SPLIT_PERIOD = 5


def need_music21(what):
    """music21, or DatasetError saying how to install it."""
    try:
        import music21
    except ImportError:
        raise DatasetError('%s needs music21: pip install music21 (or pip install -e '
                           '".[music]" in the tutorials\' folder)' % what) from None
    return music21


def roll_of_notes(notes, n_steps, r):
    """A piano roll (n_steps, r[1] - r[0]) of ``notes``: (pitch, first step, end step) triples.

    Pitches outside ``r`` are left out; a note covers its steps from the
    first to the one before the end, and at least its first.
    """
    roll = numpy.zeros((n_steps, r[1] - r[0]), dtype=numpy.uint8)
    for pitch, first, end in notes:
        if r[0] <= pitch < r[1] and first < n_steps:
            roll[first:max(end, first + 1), pitch - r[0]] = 1
    return roll


def score_piano_roll(score, r, step=1.0):
    """The piano roll of a music21 score, ``step`` quarter notes per row."""
    notes = []
    for element in score.flatten().notes:
        first = int(element.offset // step)
        end = int(-(-(element.offset + element.quarterLength) // step))
        notes.extend((pitch.midi, first, end) for pitch in element.pitches)
    n_steps = max([end for _, _, end in notes] + [1])
    return roll_of_notes(notes, n_steps, r)


def need_mido(what):
    """mido, or DatasetError saying how to install it."""
    try:
        import mido
    except ImportError:
        raise DatasetError('%s needs mido: pip install mido (or pip install -e ".[music]" in '
                           'the tutorials\' folder)' % what) from None
    return mido


def midiread(path, r=(21, 109), dt=0.3):
    """The piano roll of the MIDI file ``path``, ``dt`` seconds per row (the original's reader).

    Every track's notes count; a note from ``start`` to ``end`` seconds
    fills rows int(start / dt) to int(end / dt) - 1, and at least its first.
    Returns uint8 (n_steps, r[1] - r[0]).  Raises DatasetError for a file
    that is missing, not MIDI, or holds no notes.
    """
    mido = need_mido('reading MIDI files')
    path = Path(path)
    if not path.is_file():
        raise DatasetError('%s: no such file' % path)
    try:
        midi = mido.MidiFile(str(path))
        messages = list(midi)         # in order, times in seconds (tempo changes applied)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as err:
        raise DatasetError('%s: not a MIDI file (%s)' % (
            path, str(err) or 'it ends too soon: cut short, or not MIDI at all')) from None
    def row_of(seconds):
        # (A tolerance for the seconds' float sums: 3 x 0.3 s starts row 3, not 2.)
        return int(seconds / dt + 1e-6)

    notes, sounding, now = [], {}, 0.0
    for message in messages:
        now += message.time
        if message.type not in ('note_on', 'note_off'):
            continue
        key = (message.channel, message.note)
        if message.type == 'note_on' and message.velocity > 0:
            sounding.setdefault(key, now)
        elif key in sounding:
            notes.append((message.note, row_of(sounding.pop(key)), row_of(now)))
    if not notes:
        raise DatasetError('%s: a MIDI file with no notes' % path)
    return roll_of_notes(notes, max(end for _, _, end in notes), r)


def midiwrite(path, piano_roll, r=(21, 109), dt=0.3):
    """Write ``piano_roll`` (n_steps, r[1] - r[0]) as the MIDI file ``path``, ``dt`` s per row.

    A pitch held over consecutive rows is one note.  Returns the path.
    """
    mido = need_mido('writing MIDI files')
    ticks_per_row = 480                      # one row = one beat of 480 ticks
    piano_roll = numpy.asarray(piano_roll) > 0.5
    padded = numpy.vstack([numpy.zeros((1, piano_roll.shape[1]), dtype=numpy.int8),
                           piano_roll.astype(numpy.int8),
                           numpy.zeros((1, piano_roll.shape[1]), dtype=numpy.int8)])
    changes = numpy.diff(padded, axis=0)     # row t: +1 where a pitch starts, -1 where it ends
    events = []                              # (tick, 0 = off first, pitch)
    for row, column in numpy.argwhere(changes != 0):
        events.append((row * ticks_per_row, int(changes[row, column] > 0), r[0] + column))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage('set_tempo', tempo=int(round(dt * 1e6)), time=0))
    last = 0
    for tick, starts, pitch in sorted(events):
        track.append(mido.Message('note_on' if starts else 'note_off', note=int(pitch),
                                  velocity=64 if starts else 0, time=int(tick - last)))
        last = tick
    midi = mido.MidiFile(ticks_per_beat=ticks_per_row)
    midi.tracks.append(track)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))
    return path


def _rolls_digest(rolls):
    digest = hashlib.sha256()
    for roll in rolls:
        digest.update(numpy.ascontiguousarray(roll, dtype=numpy.uint8).tobytes())
        digest.update(str(roll.shape).encode())
    return digest.hexdigest()


def build_chorales(r):
    """The piano rolls of the 371 chorales, one step per quarter note, and their names."""
    music21 = need_music21('building the Bach chorales')
    names = list(music21.corpus.chorales.Iterator(numberingSystem='riemenschneider',
                                                  returnType='filename'))
    logger.info('reading the %d Bach chorales of music21 %s (once: they are cached)',
                len(names), music21.__version__)
    rolls = [score_piano_roll(music21.corpus.parse(name), r) for name in names]
    return rolls, names


def load_chorales(r=(21, 109), data_dir=None):
    """The chorales' piano rolls by split: ``{'train': [...], 'valid': [...], 'test': [...]}``.

    Each roll is uint8 (n_steps, r[1] - r[0]).  Built from music21's corpus
    the first time and cached in ``data_dir`` (default ``data/``) with its
    SHA-256; a cache whose contents do not match its checksum is rebuilt.
    """
    data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
    cache = data_dir / CHORALES_FILE
    rolls = None
    if cache.exists():
        arrays, meta = read_params(cache)
        if meta.get('format') == CACHE_FORMAT and list(meta.get('range', [])) == list(r):
            rolls = [array.astype(numpy.uint8) for array in arrays]
            if _rolls_digest(rolls) != meta.get('sha256'):
                logger.warning('%s: its contents do not match its checksum; building it again',
                               cache)
                rolls = None
            names = meta.get('names')
    if rolls is None:
        rolls, names = build_chorales(r)
        save_params(cache, [('roll', roll) for roll in rolls], format=CACHE_FORMAT,
                    range=list(r), names=names, sha256=_rolls_digest(rolls),
                    step='one quarter note')
        logger.info('cached in %s', cache)
    splits = {'train': [], 'valid': [], 'test': []}
    for position, roll in enumerate(rolls):
        kind = {SPLIT_PERIOD - 2: 'valid', SPLIT_PERIOD - 1: 'test'}.get(
            position % SPLIT_PERIOD, 'train')
        splits[kind].append(roll)
    logger.info('Bach chorales: %d train, %d validate, %d test; %d to %d quarter notes long',
                len(splits['train']), len(splits['valid']), len(splits['test']),
                min(len(roll) for roll in rolls), max(len(roll) for roll in rolls))
    return splits


def load_music(dataset, r=(21, 109), dt=0.3):
    """The piano rolls of ``dataset`` by split.

    ``dataset``: ``'bach-chorales'``; a folder of MIDI files (its ``train``,
    ``valid`` and ``test`` subfolders if it has them, else all its files
    train); or a list of MIDI file paths (all train).
    """
    if isinstance(dataset, (list, tuple)):
        files = [Path(path) for path in dataset]
        if not files:
            raise DatasetError('no MIDI files to train on (an empty list)')
        return {'train': [midiread(path, r, dt) for path in files], 'valid': [], 'test': []}
    if str(dataset) == CHORALES:
        return load_chorales(r)
    folder = Path(str(dataset)).expanduser()
    if not folder.is_dir():
        raise DatasetError('%s: no such folder (known name: %s)' % (dataset, CHORALES))
    splits = {}
    for kind in ('train', 'valid', 'test'):
        sub = folder / kind
        files = sorted(sub.glob('*.mid*')) if sub.is_dir() else []
        splits[kind] = [midiread(path, r, dt) for path in files]
    if not any(splits.values()):
        files = sorted(folder.glob('*.mid*'))
        if not files:
            raise DatasetError('%s: no MIDI files (*.mid) in it' % folder)
        splits = {'train': [midiread(path, r, dt) for path in files], 'valid': [], 'test': []}
    if not splits['train']:
        raise DatasetError('%s: no MIDI files to train on in %s' % (folder, folder / 'train'))
    return splits
