"""The generative family's entry for ``dl-losses demo``.

Three experiments on generated data:

1. WGAN-GP on a 2-D mixture of 8 Gaussians: the fraction of modes covered
   and a sliced Wasserstein distance to the target, with a scatter plot.
2. The hinge GAN loss with the R1 penalty on the same mixture, through the
   README's stock-``fit`` recipe (a ``WGANGPModel`` subclass).
3. A character-level language model trained with ``NanoVLMLoss`` on
   sentences of a small stochastic grammar: held-out perplexity before and
   after training, against the uniform guess and the grammar itself.
"""


def run_demo(output_dir, progress):
    """Runs the three experiments and returns their rows for the summary table."""
    from dl_techniques.losses.generative.demo.adversarial import run_adversarial_demo
    from dl_techniques.losses.generative.demo.language import run_language_demo
    from dl_techniques.losses.generative.demo.wgan import run_wgan_demo

    rows = list(run_wgan_demo(output_dir, progress))
    rows.extend(run_adversarial_demo(output_dir, progress))
    rows.extend(run_language_demo(output_dir, progress))
    return rows
