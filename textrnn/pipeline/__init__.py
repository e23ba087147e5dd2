"""Each stage's work as a library function ``run(params, paths...)``: one module per stage.

The stage scripts in stages/ read their params section, name the paths and call these;
benchmarks and tests call them directly. A module imports only what its stage needs, so
dvc.yaml can list each stage's code exactly (tests/test_dvc_yaml.py checks it).
"""
