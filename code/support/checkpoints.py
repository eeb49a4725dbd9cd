"""Checkpoints: the whole state of a training loop in one file, so that a killed run goes on.

A training loop (early stopping, layer-wise pre-training, conjugate
gradients) saves a :class:`Checkpoint` at the end of every epoch and when a
Ctrl-C stops it, as ``<name>.checkpoint.npz`` in the run's output folder.
It holds

* the values of every shared variable the compiled training functions
  update (:func:`updated_variables`): the parameters, the state of the
  update rule (momentum, moments) and the state of the engine's random
  streams (Theano's MRG states, PyTensor's generators), which is what a dA's
  corruption draws from;
* what the run keeps besides them (the best parameters so far);
* the loop's own state, JSON: epoch, next minibatch, patience, best scores,
  history;
* the run's identity: the training function, its arguments, the engine and
  ``floatX``.  ``--resume`` (``resume=True``) goes on only from a checkpoint
  of the same run, and then ends with the same model file as a run never
  interrupted.  Without it, a run starts afresh and replaces an old
  checkpoint (with a warning).

The numpy generators (``numpy.random.RandomState(seed)``) only build the
initial weights and seed the engine's streams: they do not change during
training, so they need no saving.  Files are written as model files are
(temporary name, fsync, rename): a kill while saving leaves the previous
checkpoint.  The outermost training function deletes its run's checkpoints
when it ends normally.
"""
import inspect
import logging

import numpy

from dltutorials.support import runs
from dltutorials.support.errors import DivergenceError, ModelFileError
from dltutorials.support.model_files import read_params, save_params

logger = logging.getLogger(__name__)

SUFFIX = '.checkpoint.npz'
FORMAT = 'dltutorials checkpoint 1'


def updated_variables(functions):
    """The shared variables that the compiled ``functions`` update, each once, in order.

    ``functions``: compiled Theano / PyTensor functions, Python functions
    wrapping one (``functools.wraps`` sets ``__wrapped__``), or Python
    functions that call several and list them in ``compiled_functions``.
    """
    variables = []
    for function in functions:
        for compiled in getattr(function, 'compiled_functions', [inspect.unwrap(function)]):
            if not hasattr(compiled, 'maker'):
                raise TypeError('%r is not a compiled function' % (function,))
            for entry in compiled.maker.inputs:
                if entry.update is not None and not any(entry.variable is v for v in variables):
                    variables.append(entry.variable)
    return variables


def _generator_state(value):
    """The JSON state of a random generator held by a shared variable (None for arrays)."""
    if isinstance(value, numpy.random.Generator):
        return value.bit_generator.state
    if isinstance(value, numpy.random.RandomState):
        return value.get_state(legacy=False)
    return None


def _generator(state, like):
    """A generator of the same kind as ``like``, in ``state``."""
    if isinstance(like, numpy.random.RandomState):
        generator = numpy.random.RandomState()
        generator.set_state(dict(state, state={name: numpy.asarray(value) if name == 'key'
                                               else value
                                               for name, value in state['state'].items()}))
        return generator
    bit_generator = getattr(numpy.random, state['bit_generator'])()
    bit_generator.state = state
    return numpy.random.Generator(bit_generator)


def _differences(saved, current):
    """``'name=saved there, current here'`` for each argument of the run identity that differs."""
    differences = []
    for name in sorted(set(saved) | set(current)):
        if name == 'arguments':
            continue
        if saved.get(name) != current.get(name):
            differences.append('%s %s there, %s here' % (name, saved.get(name), current.get(name)))
    saved_arguments, arguments = saved.get('arguments', {}), current.get('arguments', {})
    for name in sorted(set(saved_arguments) | set(arguments)):
        if saved_arguments.get(name) != arguments.get(name):
            differences.append('%s=%s there, %s here'
                               % (name, saved_arguments.get(name), arguments.get(name)))
    return differences


class Checkpoint:
    """The saved state of one training loop of a run, in ``<name>.checkpoint.npz``.

    On a run with ``resume`` on, the saved values are put back into
    ``variables`` and ``kept`` at once, and :attr:`saved` is the loop's state
    to go on from (None: start from the beginning).

    Parameters
    ----------
    name : str
        the file's name without suffix, in the run's output folder.
    variables : list of shared variables
        whose values are the model's whole state in training (see
        :func:`updated_variables`).
    kept : list, optional
        arrays the run keeps besides (the best parameters so far); saved,
        and on resuming refilled in place.
    """

    def __init__(self, name, variables, kept=None):
        self.path = runs.output_path(name + SUFFIX)
        self.variables = list(variables)
        self.kept = kept if kept is not None else []
        self.identity = runs.run_identity()
        self.saved = None
        runs.register_checkpoint(self.path)
        if runs.current_run().resume:
            self.saved = self._restore()
        elif self.path.exists():
            logger.warning('%s holds the state of an interrupted run: this run starts afresh '
                           'and replaces it (to go on with it instead, use --resume)', self.path)

    def save(self, loop_state, where):
        """Write the variables, ``kept`` and ``loop_state`` (JSON-serialisable) to the file.

        ``where`` says in words where the loop is (``'the end of epoch 3'``),
        for the message when a parameter is no longer a finite number: then
        DivergenceError is raised and the previous checkpoint stays.
        """
        pairs, generators = [], {}
        for index, variable in enumerate(self.variables):
            value = variable.get_value(borrow=True)
            state = _generator_state(value)
            if state is not None:
                generators[str(index)] = state
                continue
            if not numpy.isfinite(value).all():
                raise DivergenceError('training diverged: %s became NaN or infinite by %s; '
                                      'try a smaller learning rate' % (variable, where))
            pairs.append(('state', value))
        pairs.extend(('kept', numpy.asarray(value)) for value in self.kept)
        save_params(self.path, pairs, format=FORMAT, run=self.identity, loop=loop_state,
                    generators=generators, n_kept=len(self.kept))

    def _restore(self):
        if not self.path.exists():
            if not runs.run_has_resumed():
                raise ModelFileError('nothing to resume: no checkpoint %s (the run ended, or '
                                     'was stopped before the end of its first epoch); run '
                                     'without --resume' % self.path)
            return None        # an earlier loop of this run was resumed; this one had not begun
        arrays, meta = read_params(self.path)
        if meta.get('format') != FORMAT:
            raise ModelFileError('%s: not a checkpoint written by dltutorials' % self.path)
        differences = _differences(meta.get('run', {}), self.identity)
        if differences:
            raise ModelFileError('%s is the checkpoint of another run (%s); run the same '
                                 'command with --resume, or without it to start afresh'
                                 % (self.path, '; '.join(differences)))
        generators = meta.get('generators', {})
        n_kept = meta.get('n_kept', 0)
        state_arrays, kept = arrays[:len(arrays) - n_kept], arrays[len(arrays) - n_kept:]
        if len(state_arrays) + len(generators) != len(self.variables):
            raise ModelFileError('%s holds %d state values, this run has %d'
                                 % (self.path, len(state_arrays) + len(generators),
                                    len(self.variables)))
        values = iter(state_arrays)
        for index, variable in enumerate(self.variables):
            current = variable.get_value(borrow=True)
            if str(index) in generators:
                variable.set_value(_generator(generators[str(index)], current))
                continue
            value = next(values)
            if value.shape != current.shape:
                raise ModelFileError('%s does not fit this run: %s has shape %s there, %s here'
                                     % (self.path, variable, value.shape, current.shape))
            variable.set_value(value.astype(current.dtype))
        self.kept[:] = kept
        runs.mark_resumed()
        logger.info('resuming from %s', self.path)
        return meta['loop']


def checkpoint_for(functions, name, kept=None):
    """A :class:`Checkpoint` of everything ``functions`` update, named ``name``."""
    return Checkpoint(name, updated_variables(functions), kept)

