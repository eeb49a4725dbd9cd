"""GANs: the two networks' shapes, each player learning against the other, the saved model, bad input."""
import subprocess
import sys

import numpy
import pytest

from conftest import REPO
from dltutorials import gan, load_model
from dltutorials.support.engine import T, theano

SCRIPT = str(REPO / 'code' / 'gan.py')
SAMPLE = str(REPO / 'data' / 'mnist_sample.pkl.gz')
floatX = theano.config.floatX


def run_script(*arguments, timeout=600):
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in arguments],
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO))


@pytest.mark.parametrize('architecture', gan.ARCHITECTURES)
def test_the_generator_draws_images_the_discriminator_scores_each(architecture):
    network = gan.GAN(numpy.random.RandomState(0), architecture=architecture, n_noise=10)
    noise, images = T.matrix('noise'), T.matrix('images')
    draw = theano.function([noise], network.generator(noise, training=True))
    score = theano.function([images], network.discriminator(images, training=False))
    drawn = draw(numpy.random.RandomState(1).normal(size=(6, 10)).astype(floatX))
    assert drawn.shape == (6, 784) and drawn.dtype == floatX
    assert 0 <= drawn.min() and drawn.max() <= 1
    assert score(drawn).shape == (6,)
    # The saved model's images: the running averages, one image independent of the others.
    assert numpy.array_equal(network.sample(5, seed=3), network.sample(8, seed=3)[:5])


def images_of_digits(n=128):
    from dltutorials.support.datasets import load_arrays
    return load_arrays(SAMPLE)[0][0][:n]


@pytest.mark.parametrize('architecture', gan.ARCHITECTURES)
def test_each_player_gains_when_only_it_is_trained(architecture):
    network = gan.GAN(numpy.random.RandomState(0), architecture=architecture, n_noise=10)
    train_images = theano.shared(images_of_digits(64).astype(floatX))
    train_discriminator, train_generator = gan.build_gan_functions(
        network, train_images, batch_size=32, learning_rate=1e-3, seed=5)
    # The discriminator alone learns to tell the digits from the untrained drawings ...
    first = train_discriminator(0)
    for step in range(30):
        last = train_discriminator(step % 2)
    assert last[0] < 0.5 * first[0]
    assert last[1] > 0.8 and last[2] < 0.2        # D(x) high, D(G(z)) low
    # ... then the generator alone learns to fool that discriminator.
    before = numpy.mean([train_generator() for _ in range(3)])
    for _ in range(30):
        after = train_generator()
    assert after < 0.5 * before


def test_label_smoothing_aims_the_discriminator_below_one():
    # Aiming at 0.9: 0.9 softplus(-l) + 0.1 softplus(l) = softplus(-l) + 0.1 l for a real
    # image's logit l, so the loss grows by 0.1 times the mean real logit.
    images = images_of_digits(32)
    smoothed_gan, plain_gan = (gan.GAN(numpy.random.RandomState(0), architecture='dcgan',
                                       n_noise=10) for _ in range(2))
    real = T.matrix('real')
    mean_logit = theano.function([real], smoothed_gan.discriminator(real, training=True).mean())(
        images.astype(floatX))
    train_images = theano.shared(images.astype(floatX))
    smoothed, _ = gan.build_gan_functions(smoothed_gan, train_images, 32, label_smoothing=0.1,
                                          seed=5)
    plain, _ = gan.build_gan_functions(plain_gan, train_images, 32, seed=5)
    assert smoothed(0)[0] - plain(0)[0] == pytest.approx(0.1 * mean_logit, rel=1e-3, abs=1e-5)


def test_collapse_is_named_in_one_line():
    assert gan.collapse_warning(dict(class_shares=[0.1] * 10)) is None
    assert 'mode collapse' in gan.collapse_warning(dict(class_shares=[0.46] + [0.06] * 9))
    assert 'mode collapse' in gan.collapse_warning(
        dict(class_shares=[0.2] * 5 + [0.0] * 3 + [0.0, 0.0]))


def test_the_script_trains_saves_samples_and_draws_the_same_images_for_a_seed(small_sample,
                                                                             tmp_path):
    done = run_script('--dataset', small_sample, '--architecture', 'gan', '--n-epochs', '2',
                      '--batch-size', '100', '--output-dir', tmp_path / 'run')
    assert done.returncode == 0, done.stderr
    assert 'epoch 2: D loss' in done.stderr
    for name in ('gan.npz', 'gan_epoch_001.png', 'gan_epoch_002.png', 'gan_progress.png',
                 'gan_interpolation.png', 'gan_curves.png'):
        assert (tmp_path / 'run' / name).exists(), name
    assert not list((tmp_path / 'run').glob('*.checkpoint.npz'))

    drawn = run_script('--sample', '30', '--output-dir', tmp_path / 'run')
    assert drawn.returncode == 0, drawn.stderr
    samples = numpy.load(tmp_path / 'run' / 'samples.npz')['samples']
    assert samples.shape == (30, 784) and 0 <= samples.min() and samples.max() <= 1
    assert (tmp_path / 'run' / 'samples.png').exists()

    model = load_model(tmp_path / 'run' / 'gan.npz')
    numpy.testing.assert_array_equal(model.sample(30, seed=1234), samples)
    assert not numpy.array_equal(model.sample(30, seed=1), samples)

    again = run_script('--dataset', small_sample, '--architecture', 'gan', '--n-epochs', '2',
                       '--batch-size', '100', '--output-dir', tmp_path / 'again', '--quiet')
    assert again.returncode == 0, again.stderr
    assert (tmp_path / 'again' / 'gan.npz').read_bytes() == \
        (tmp_path / 'run' / 'gan.npz').read_bytes()


@pytest.mark.parametrize('flags, message', [
    (['--sample', '0'], 'argument --sample: must be a positive integer'),
    (['--sample', '5'], 'no saved GAN; train one first'),
    (['--architecture', 'vae'], "argument --architecture"),
    (['--evaluate'], '--evaluate needs --classifier'),
])
def test_bad_input_gets_one_line_and_exit_2(flags, message, tmp_path):
    if flags == ['--evaluate']:
        make_gan_file(tmp_path / 'gan.npz')
    done = run_script(*flags, '--output-dir', tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert 'Traceback' not in done.stderr


def make_gan_file(path):
    from dltutorials.support.models import save_model
    network = gan.GAN(numpy.random.RandomState(0), architecture='gan', n_noise=10)
    save_model(path, network, dict(architecture='gan', n_noise=10))


def test_a_model_file_of_another_kind_is_refused(tmp_path):
    from dltutorials.mlp import MLP
    from dltutorials.support.models import save_model
    mlp = MLP(numpy.random.RandomState(0), T.matrix('x'), 784, 10, 10)
    save_model(tmp_path / 'gan.npz', mlp, dict(n_in=784, n_hidden=10, n_out=10))
    done = run_script('--sample', '5', '--output-dir', tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == \
        'error: %s holds a MLP, not a GAN' % (tmp_path / 'gan.npz')


def test_an_impossible_output_folder_is_refused(tmp_path):
    (tmp_path / 'a_file').write_text('not a folder')
    done = run_script('--dataset', SAMPLE, '--output-dir', tmp_path / 'a_file', '--quick')
    assert done.returncode == 2
    assert 'Traceback' not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith('error: ')


@pytest.fixture(scope='module')
def classifier_file(tmp_path_factory):
    """A LeNet5 trained for a moment: enough to compare sets of images in its feature space."""
    folder = tmp_path_factory.mktemp('lenet')
    done = subprocess.run([sys.executable, str(REPO / 'code' / 'convolutional_mlp.py'),
                           '--dataset', SAMPLE, '--quick', '--no-plot', '--quiet',
                           '--output-dir', str(folder)], capture_output=True, text=True,
                          timeout=600, cwd=str(REPO))
    assert done.returncode == 0, done.stderr
    return folder / 'convolutional_mlp.npz'


def test_the_judge_puts_real_images_near_the_test_set_and_bad_drawings_far(classifier_file):
    from dltutorials.support.datasets import load_arrays
    (train, _), (valid, _), (test, _) = load_arrays(SAMPLE)
    judge = gan.DrawingJudge(classifier_file, test, valid, n_samples=1000, n_parzen=300)
    rng = numpy.random.RandomState(0)
    measures = {name: judge.judge(images.astype(floatX)) for name, images in
                gan.bad_generators(train, 1000, rng).items()}
    itself = judge.judge(test)
    assert itself['frechet'] == pytest.approx(0, abs=1e-6)
    real = measures['training images (the floor)']
    for bad in ('uniform noise', 'the training mean', 'one training image'):
        assert measures[bad]['frechet'] > 5 * real['frechet'], bad
    assert real['parzen'] > measures['uniform noise']['parzen']
    # One image repeated: a single class.
    assert max(measures['one training image']['class_shares']) == 1


def test_evaluate_prints_the_measures_beside_the_bad_generators(classifier_file, small_sample,
                                                                tmp_path):
    make_gan_file(tmp_path / 'gan.npz')
    done = run_script('--evaluate', '--classifier', classifier_file, '--dataset', small_sample,
                      '--output-dir', tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if 'Frechet distance' in line]
    assert [line.split('  ')[0] for line in lines] == [
        'GAN(gan, n_noise=10)', 'uniform noise', 'the training mean', 'one training image',
        'training images (the floor)']


def test_a_loaded_gan_draws_and_refuses_to_predict_in_one_line(tmp_path):
    from dltutorials.support.errors import ModelFileError
    make_gan_file(tmp_path / 'gan.npz')
    model = load_model(tmp_path / 'gan.npz')
    assert model.sample(3).shape == (3, 784)
    with pytest.raises(ModelFileError, match=r'^GAN\(gan, n_noise=10\) draws images and neither '
                                             r'classifies nor reconstructs them: use sample\(n\)$'):
        model.predict(numpy.zeros((2, 784)))
    with pytest.raises(ModelFileError, match='draws images'):
        model.evaluate(SAMPLE)
