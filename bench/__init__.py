"""Benchmarks behind every speed and accuracy claim in the README, each against a reference
measured in the same run on the same machine (absolute times drift on shared machines; ratios
hold). Run from the repository root:

    python -m bench.training      the Keras example "Simple MNIST convnet" vs the notebook's
                                  training: wall time, epochs, test error, error_vs_time.png
    python -m bench.time_to_99    time to 99.0% test accuracy, both
    python -m bench.cold_start    `python interface.py image.png` vs a tutorial Keras script
    python -m bench.throughput    1,000 and 10,000 files through interface.py; 1,000 realistic
                                  pictures vs decoding them; where a call's time goes, stage
                                  by stage (throughput_stages.png); in-process
                                  Classifier.probabilities vs Keras model.predict
    python -m bench.memory        peak RSS of training (both) and of one command-line call
    python -m bench.report        the README's results table from bench/results/*.json

Each benchmark takes --help, --quick (smaller, writes to bench/results/quick/) and --dry-run
(tiny, the real code path, writes to a temporary folder; the tests run it), prints a markdown
table and writes bench/results/<name>.json with the machine, library versions, date, commit and
command. Training settings come from `digits.training.config.TrainingConfig`, as the notebook's do.
"""
