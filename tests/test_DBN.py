"""The deep belief network: RBMs sharing the MLP's parameters, both phases, save/load, the CLI."""
import inspect

import numpy
import pytest

from dltutorials.support.engine import theano

from conftest import make_digits
from dltutorials import DBN as dbn_module, load_model
from dltutorials.DBN import DBN, load_dbn, main, train_dbn
from dltutorials.data_loading import load_data
from dltutorials.support.errors import HyperparameterError

floatX = theano.config.floatX


def small_dbn(seed=0, sizes=(30, 20)):
    return DBN(numpy.random.RandomState(seed), n_ins=784, hidden_layers_sizes=sizes, n_outs=10)


def test_layers_share_their_weights_and_hidden_biases_with_their_rbms():
    dbn = small_dbn()
    assert dbn.n_layers == 2 and len(dbn.rbm_layers) == 2
    for sigmoid_layer, rbm in zip(dbn.sigmoid_layers, dbn.rbm_layers):
        assert rbm.W is sigmoid_layer.W and rbm.hbias is sigmoid_layer.b
        assert rbm.input is sigmoid_layer.input
    assert dbn.rbm_layers[1].input is dbn.sigmoid_layers[0].output
    # The visible biases are the RBMs' own: not fine-tuned.
    assert not any(rbm.vbias is p for rbm in dbn.rbm_layers for p in dbn.params)
    assert [p.get_value().shape for p in dbn.params] == [(784, 30), (30,), (30, 20), (20,),
                                                        (20, 10), (10,)]
    assert repr(dbn) == 'DBN(n_ins=784, hidden_layers_sizes=[30, 20], n_outs=10)'


def test_pretraining_an_rbm_changes_that_layer_and_only_that_layer(tiny_pkl):
    dbn = small_dbn()
    fns = dbn.pretraining_functions(load_data(tiny_pkl)[0][0], batch_size=20, k=1)
    assert len(fns) == 2
    everything = dbn.params + [rbm.vbias for rbm in dbn.rbm_layers]
    before = [p.get_value() for p in everything]
    costs = [[float(fns[1](index=i, lr=0.1)) for i in range(15)] for _ in range(8)]
    changed = [not numpy.array_equal(b, p.get_value()) for b, p in zip(before, everything)]
    # W1, b1 of the MLP and the second RBM's visible biases; nothing else.
    assert changed == [False, False, True, True, False, False, False, True]
    assert numpy.mean(costs[-1]) < numpy.mean(costs[0])
    assert numpy.isfinite(fns[0](0))          # the original's default learning rate, 0.1


def test_pretraining_helps_fine_tuning_from_the_same_seed(tiny_pkl, tmp_path):
    common = dict(finetune_lr=0.01, training_epochs=1, dataset=str(tiny_pkl), batch_size=10,
                  hidden_layers_sizes=[50, 50], patience=10 ** 6)
    random_start = train_dbn(pretraining_epochs=0, **common)
    pretrained = train_dbn(pretraining_epochs=5, pretrain_lr=0.1, **common)
    # After one slow epoch of fine-tuning on 300 examples, the network from
    # random weights is still near chance (89 % error here); pre-trained
    # features are nearly separable already (13-38 % over seeds).
    assert pretrained['test_error'] < random_start['test_error'] - 0.3
    assert len(pretrained['pretraining']['costs']) == 2


def test_the_loaded_model_predicts_as_the_trained_one(tiny_pkl, tmp_path):
    result = train_dbn(finetune_lr=0.5, pretraining_epochs=2, pretrain_lr=0.05,
                       training_epochs=30, dataset=str(tiny_pkl), batch_size=20,
                       hidden_layers_sizes=[30, 20])
    assert result['test_error'] < 0.2
    for name in ('DBN.npz', 'DBN_curve.png', 'DBN_pretrained.npz', 'DBN_layer0_filters.png'):
        assert (tmp_path / name).exists()
    trained = result['model'].network
    images = make_digits(200, seed=7)[0].astype(floatX)
    expected = theano.function([trained.x], trained.y_pred)(images)
    dbn = load_dbn(tmp_path / 'DBN.npz')
    assert dbn.hidden_layers_sizes == [30, 20]
    numpy.testing.assert_array_equal(theano.function([dbn.x], dbn.y_pred)(images), expected)
    numpy.testing.assert_array_equal(load_model(tmp_path / 'DBN.npz').predict(images), expected)


def test_the_original_entry_point_keeps_its_signature():
    parameters = inspect.signature(dbn_module.test_DBN).parameters
    assert list(parameters)[:7] == ['finetune_lr', 'pretraining_epochs', 'pretrain_lr', 'k',
                                    'training_epochs', 'dataset', 'batch_size']
    assert [parameters[name].default for name in list(parameters)[:7]] == [
        0.1, 100, 0.01, 1, 1000, 'mnist.pkl.gz', 10]
    assert parameters['hidden_layers_sizes'].default == (1000, 1000, 1000)
    assert list(inspect.signature(DBN).parameters) == [
        'numpy_rng', 'theano_rng', 'n_ins', 'hidden_layers_sizes', 'n_outs']


@pytest.mark.parametrize('kwargs, message', [
    (dict(pretraining_epochs=-1), 'pretraining_epochs'), (dict(k=0), 'k must be'),
    (dict(batch_size=301), 'larger than'), (dict(hidden_layers_sizes=[]), 'hidden_layers_sizes'),
])
def test_nonsense_hyperparameters_are_refused(tiny_pkl, tmp_path, kwargs, message):
    with pytest.raises(HyperparameterError, match=message):
        train_dbn(dataset=str(tiny_pkl), **kwargs)


def test_quick_mode_end_to_end_from_the_command_line(tiny_pkl, tmp_path, capsys):
    args = ['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path), '--quick',
            '--hidden-layers-sizes', '20', '10', '5']
    assert main(args) == 0
    err = capsys.readouterr().err
    assert 'Pre-training layer 2, epoch 1, cost' in err
    assert 'epoch 1, minibatch 1/1, validation error' in err
    assert main(args + ['--predict']) == 0
    for flags in (['--pretraining-epochs', '-1'], ['--k', '0'], ['--hidden-layers-sizes', 'x']):
        with pytest.raises(SystemExit) as stop:
            main(flags)
        assert stop.value.code == 2


def test_an_interrupted_pretraining_is_saved_before_stopping(tiny_pkl, tmp_path, monkeypatch):
    from dltutorials.training import PretrainingResult

    def interrupted(pretraining_fns, *args, **kwargs):
        pretraining_fns[0](0, lr=0.1)     # some work done, then Ctrl-C
        return PretrainingResult(costs=[[1.0]], seconds=[0.1], stopped_by='interrupted')

    monkeypatch.setattr(dbn_module, 'pretrain_layers', interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_dbn(dataset=str(tiny_pkl), hidden_layers_sizes=[30, 20])
    assert load_dbn(tmp_path / 'DBN_pretrained.npz').hidden_layers_sizes == [30, 20]
    assert not (tmp_path / 'DBN.npz').exists()
    assert main(['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path / 'cli'),
                 '--hidden-layers-sizes', '30', '20']) == 130
