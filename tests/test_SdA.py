"""The stacked denoising autoencoder: shared parameters, both phases, save/load, the CLI."""
import numpy
import pytest

from dltutorials.support.engine import theano

from conftest import make_digits
from dltutorials import SdA as sda_module, load_model
from dltutorials.SdA import SdA, load_sda, main, train_sda
from dltutorials.data_loading import load_data
from dltutorials.support.errors import HyperparameterError, ModelFileError

floatX = theano.config.floatX


def small_sda(seed=0, sizes=(30, 20), levels=(0.1, 0.2)):
    return SdA(numpy.random.RandomState(seed), n_ins=784, hidden_layers_sizes=sizes, n_outs=10,
               corruption_levels=levels)


def test_layers_share_their_parameters_with_their_dAs():
    sda = small_sda()
    assert sda.n_layers == 2 and len(sda.dA_layers) == 2
    for sigmoid_layer, dA_layer in zip(sda.sigmoid_layers, sda.dA_layers):
        assert dA_layer.W is sigmoid_layer.W and dA_layer.b is sigmoid_layer.b
        assert dA_layer.x is sigmoid_layer.input
    assert sda.dA_layers[0].x is sda.x
    assert sda.dA_layers[1].x is sda.sigmoid_layers[0].output
    assert [p.get_value().shape for p in sda.params] == [(784, 30), (30,), (30, 20), (20,),
                                                        (20, 10), (10,)]
    assert repr(sda) == ('SdA(n_ins=784, hidden_layers_sizes=[30, 20], n_outs=10, '
                         'corruption_levels=[0.1, 0.2])')


def test_the_same_seed_gives_the_same_network():
    for first, second in zip(small_sda(seed=5).params, small_sda(seed=5).params):
        numpy.testing.assert_array_equal(first.get_value(), second.get_value())
    assert not numpy.array_equal(small_sda(seed=5).params[0].get_value(),
                                 small_sda(seed=6).params[0].get_value())


def test_pretraining_a_dA_trains_the_mlp_layer_and_only_that_layer(tiny_pkl):
    sda = small_sda()
    train_set_x = load_data(tiny_pkl)[0][0]
    fns = sda.pretraining_functions(train_set_x, batch_size=20)
    assert len(fns) == 2
    before = [p.get_value() for p in sda.params]
    costs = [[float(fns[1](index=i, corruption=0.2, lr=0.1)) for i in range(15)]
             for _ in range(8)]
    after = [p.get_value() for p in sda.params]
    assert numpy.mean(costs[-1]) < numpy.mean(costs[0])
    changed = [not numpy.array_equal(b, a) for b, a in zip(before, after)]
    assert changed == [False, False, True, True, False, False]
    assert numpy.isfinite(fns[0](0))          # the original's defaults: corruption 0.2, lr 0.1


def test_finetuning_lowers_the_cost_and_scores_whole_sets(tiny_pkl):
    sda = small_sda()
    datasets = load_data(tiny_pkl)
    train_fn, valid_score, test_score = sda.build_finetune_functions(datasets, 20, 0.5)
    first = numpy.mean([train_fn(i) for i in range(15)])
    for _ in range(30):
        last = numpy.mean([train_fn(i) for i in range(15)])
    assert last < 0.5 * first
    # The scorers give one error rate over the whole set: that of the predictions.
    test_x, test_y = make_digits(100, seed=3)
    predicted = theano.function([sda.x], sda.y_pred)(test_x.astype(floatX))
    assert valid_score() < 0.2
    assert test_score() == pytest.approx(numpy.mean(predicted != test_y))


@pytest.mark.parametrize('kwargs, message', [
    (dict(hidden_layers_sizes=()), 'hidden_layers_sizes'),
    (dict(hidden_layers_sizes=(10, 0)), 'hidden_layers_sizes'),
    (dict(hidden_layers_sizes=500), 'hidden_layers_sizes'),
    (dict(corruption_levels=0.1), 'corruption_levels'),
    (dict(corruption_levels=(0.1,)), 'hidden_layers_sizes and corruption_levels must have the '
                                     'same length, got 2 and 1'),
    (dict(corruption_levels=(0.1, 1.5)), 'corruption_levels'),
])
def test_nonsense_architectures_are_refused_before_the_data_is_read(kwargs, message):
    with pytest.raises(HyperparameterError, match=message):
        train_sda(dataset='no such file', **kwargs)


def test_the_loaded_model_predicts_as_the_trained_one(tiny_pkl, tmp_path):
    result = train_sda(finetune_lr=0.5, pretraining_epochs=2, pretrain_lr=0.05,
                       training_epochs=30, dataset=str(tiny_pkl), batch_size=20,
                       hidden_layers_sizes=[30, 20])
    assert result['test_error'] < 0.2
    assert len(result['pretraining']['costs']) == 2
    for name in ('SdA.npz', 'SdA_curve.png', 'SdA_pretrained.npz', 'SdA_layer0_filters.png'):
        assert (tmp_path / name).exists()
    trained = result['model'].network
    images = make_digits(200, seed=7)[0].astype(floatX)
    expected = theano.function([trained.x], trained.y_pred)(images)
    sda = load_sda(tmp_path / 'SdA.npz')
    assert sda.hidden_layers_sizes == [30, 20]
    numpy.testing.assert_array_equal(theano.function([sda.x], sda.y_pred)(images), expected)
    numpy.testing.assert_array_equal(load_model(tmp_path / 'SdA.npz').predict(images), expected)


def test_no_pretraining_starts_fine_tuning_from_the_same_random_network(tiny_pkl, tmp_path):
    result = train_sda(pretraining_epochs=0, training_epochs=1, dataset=str(tiny_pkl),
                       hidden_layers_sizes=[30, 20])
    assert result['pretraining']['costs'] == []
    assert not (tmp_path / 'SdA_pretrained.npz').exists()


def test_a_file_of_another_model_is_refused(tmp_path):
    from dltutorials.support.model_files import save_params
    save_params(tmp_path / 'SdA.npz', small_sda(sizes=(30, 20)).params, model='SdA',
                architecture=dict(hidden_layers_sizes=[30, 21], corruption_levels=[0.1, 0.2]))
    with pytest.raises(ModelFileError, match=r'\(30, 20\) in the file, \(30, 21\) in the model'):
        load_sda(tmp_path / 'SdA.npz')


def test_the_original_entry_point_keeps_its_signature():
    import inspect
    parameters = inspect.signature(sda_module.test_SdA).parameters
    assert list(parameters)[:6] == ['finetune_lr', 'pretraining_epochs', 'pretrain_lr',
                                    'training_epochs', 'dataset', 'batch_size']
    assert parameters['batch_size'].default == 1 and parameters['pretrain_lr'].default == 0.001


@pytest.mark.parametrize('kwargs, message', [
    (dict(pretraining_epochs=-1), 'pretraining_epochs'), (dict(finetune_lr=0), 'finetune_lr'),
    (dict(batch_size=301), 'larger than'), (dict(patience=0), 'patience'),
])
def test_nonsense_hyperparameters_are_refused(tiny_pkl, tmp_path, kwargs, message):
    with pytest.raises(HyperparameterError, match=message):
        train_sda(dataset=str(tiny_pkl), **kwargs)


def test_quick_mode_end_to_end_from_the_command_line(tiny_pkl, tmp_path, capsys):
    args = ['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path), '--quick',
            '--hidden-layers-sizes', '20', '10', '5', '--corruption-levels', '0.1', '0.2', '0.3']
    assert main(args) == 0
    err = capsys.readouterr().err
    assert 'Pre-training layer 2, epoch 1, cost' in err
    assert 'epoch 1, minibatch 1/1, validation error' in err
    assert main(args + ['--predict']) == 0
    assert main(args[:4] + ['--corruption-levels', '0.1']) == 2      # 1 level for 2 layers
    assert ('error: hidden_layers_sizes and corruption_levels must have the same length, got 2 '
            'and 1') in capsys.readouterr().err
    for flags in (['--pretraining-epochs', '-1'], ['--corruption-levels', '1.0']):
        with pytest.raises(SystemExit) as stop:
            main(flags)
        assert stop.value.code == 2


def test_an_interrupted_pretraining_is_saved_before_stopping(tiny_pkl, tmp_path, monkeypatch):
    from dltutorials.training import PretrainingResult

    def interrupted(pretraining_fns, *args, **kwargs):
        pretraining_fns[0](0, corruption=0.1, lr=0.1)     # some work done, then Ctrl-C
        return PretrainingResult(costs=[[1.0]], seconds=[0.1], stopped_by='interrupted')

    monkeypatch.setattr(sda_module, 'pretrain_layers', interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_sda(dataset=str(tiny_pkl), hidden_layers_sizes=[30, 20])
    assert load_sda(tmp_path / 'SdA_pretrained.npz').hidden_layers_sizes == [30, 20]
    assert not (tmp_path / 'SdA.npz').exists()
    assert main(['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path / 'cli'),
                 '--hidden-layers-sizes', '30', '20']) == 130
