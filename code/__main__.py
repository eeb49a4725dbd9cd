"""``python -m dltutorials``: what the tutorials run on here (engine, BLAS and kernel, OpenMP)."""
from dltutorials.support.engine_setup import describe


def main():
    print('\n'.join(describe()))


if __name__ == '__main__':
    main()
