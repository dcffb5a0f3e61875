"""The top layer: where Snakemake's jobs and the command line meet the library.

`rule_job` is the one module that sees the `snakemake` object: it turns a
rule's inputs, params and resources into plain values for the stages below;
`takeover` is the `campaign takeover` command, which reads every layer's
state to run a lost server's work. Nothing below imports from here
(the import contracts in pyproject.toml, checked by the README's test command).
"""
