"""A Keras model that trains a WGAN-GP with stock ``compile`` and ``fit``."""

import numbers
from typing import Any

import keras

from dl_techniques.losses.core import training, validation
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative.gradient_penalty import compute_gradient_penalty


@register_serializable
class WGANGPModel(keras.Model):
    """A generator and a critic trained as a WGAN-GP by ``fit`` on any backend.

    Each ``fit`` step takes a batch of real samples ``x`` (no targets) and
    runs Algorithm 1 of Gulrajani et al.: ``critic_steps`` critic updates,
    then one generator update, each on fresh latent draws ``z``:

    ```
    critic:     mean D(G(z)) - mean D(x) + compute_gradient_penalty(D, x, G(z))
    generator:  - mean D(G(z))
    ```

    The critic updates of one step reuse its real batch. Each update is one
    ``core.training.optimizer_step`` (a ``tf.GradientTape`` on tensorflow, a
    stateless step under ``jax.jit`` on jax, autograd on torch), so
    ``compile``/``fit`` need nothing else. ``fit`` reports ``critic_loss``,
    ``gradient_penalty`` (of the last critic update) and ``generator_loss``.

    Calling the model scores samples with the critic, so ``predict`` gives
    critic scores; ``sample_latent`` draws the latent codes, and a subclass
    may override it to change the prior. Randomness (latents, interpolation
    weights) comes from the model's ``keras.random.SeedGenerator``, seeded by
    ``seed``.

    Reference:
        Gulrajani, I., Ahmed, F., Arjovsky, M., Dumoulin, V., & Courville, A.
        (2017). Improved Training of Wasserstein GANs. NeurIPS 2017.
        https://arxiv.org/abs/1704.00028

    Args:
        generator: Keras model mapping latents ``(B, latent_dim)`` to samples.
        critic: Keras model mapping samples to scores ``(B, 1)``; no batch
            normalisation (the penalty is per sample).
        latent_dim: Positive int, the size of a latent code.
        critic_steps: Positive int, critic updates per generator update.
            Defaults to 5.
        lambda_gp: Finite number >= 0, the penalty coefficient. Defaults to
            10.0.
        seed: Optional int seeding the model's random draws.
        **kwargs: Passed to ``keras.Model`` (``name``, ...).

    Example:

    ```python
    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    critic = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, "relu"),
                               keras.layers.Dense(1)])
    gan = WGANGPModel(generator, critic, latent_dim=4, critic_steps=5, lambda_gp=10.0)
    gan.compile(
        critic_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9),
        generator_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9),
    )
    gan.fit(real_samples, batch_size=64, epochs=2)
    samples = gan.generator(gan.sample_latent(256))
    ```
    """

    def __init__(
        self,
        generator: keras.Model,
        critic: keras.Model,
        latent_dim: int,
        critic_steps: int = 5,
        lambda_gp: float = 10.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        validation.check_positive_int("WGANGPModel", "latent_dim", latent_dim)
        validation.check_positive_int("WGANGPModel", "critic_steps", critic_steps)
        validation.check_non_negative("WGANGPModel", "lambda_gp", lambda_gp)
        if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)):
            raise ValueError(f"WGANGPModel: `seed` must be None or an int; got seed={seed!r}.")
        super().__init__(**kwargs)
        self.generator = generator
        self.critic = critic
        self.latent_dim = int(latent_dim)
        self.critic_steps = int(critic_steps)
        self.lambda_gp = float(lambda_gp)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        if generator.built and critic.built:
            self.built = True

    def build(self, input_shape: Any) -> None:
        if not self.generator.built:
            self.generator.build((None, self.latent_dim))
        if not self.critic.built:
            self.critic.build(input_shape)
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.critic(inputs, training=training)

    def sample_latent(self, batch_size: Any) -> Any:
        """Returns ``batch_size`` latent codes drawn from N(0, I)."""
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.critic_loss_tracker, self.penalty_tracker, self.generator_loss_tracker]

    def compile(
        self,
        critic_optimizer: keras.optimizers.Optimizer | str | None = None,
        generator_optimizer: keras.optimizers.Optimizer | str | None = None,
        **kwargs: Any,
    ) -> None:
        """Configures the two optimizers for ``fit``.

        Args:
            critic_optimizer: Optimizer (or its name) of the critic. Defaults
                to the paper's ``Adam(1e-4, beta_1=0.0, beta_2=0.9)``.
            generator_optimizer: Optimizer (or its name) of the generator, a
                different instance from ``critic_optimizer``. Same default.
            **kwargs: ``jit_compile``, ``run_eagerly``,
                ``steps_per_execution``, as for ``keras.Model.compile``.
        """
        for argument in ("loss", "loss_weights", "metrics", "weighted_metrics", "optimizer"):
            if kwargs.get(argument) is not None:
                raise ValueError(
                    f"WGANGPModel: compile takes critic_optimizer and generator_optimizer; "
                    f"`{argument}` is not used (the WGAN-GP losses are built in), got "
                    f"{argument}={kwargs[argument]!r}."
                )
            kwargs.pop(argument, None)
        critic = _optimizer(critic_optimizer)
        generator = _optimizer(generator_optimizer)
        if critic is generator:
            raise ValueError(
                "WGANGPModel: `critic_optimizer` and `generator_optimizer` must be two "
                "optimizer instances; got the same instance twice."
            )
        self.critic_optimizer = critic
        self.generator_optimizer = generator
        pair = _OptimizerPair(critic_optimizer, generator_optimizer, self._variable_groups)
        super().compile(optimizer=pair, **kwargs)
        self._wgan_compile_config = {
            "critic_optimizer": keras.saving.serialize_keras_object(critic_optimizer),
            "generator_optimizer": keras.saving.serialize_keras_object(generator_optimizer),
            **{key: value for key, value in kwargs.items() if key != "auto_scale_loss"},
        }

    def get_compile_config(self) -> dict[str, Any]:
        return dict(getattr(self, "_wgan_compile_config", {}))

    def compile_from_config(self, config: dict[str, Any]) -> None:
        config = dict(config)
        self.compile(
            critic_optimizer=keras.saving.deserialize_keras_object(config.pop("critic_optimizer")),
            generator_optimizer=keras.saving.deserialize_keras_object(
                config.pop("generator_optimizer")
            ),
            **config,
        )
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def train_step(self, *args: Any) -> Any:
        state, data = training.split_train_step_args(self, args)
        real = self._real_batch(data)
        batch_size = keras.ops.shape(real)[0]
        critic_variables, generator_variables = self._variable_groups()
        for _ in range(self.critic_steps):
            critic_loss, penalty = training.optimizer_step(
                lambda: self.critic_losses(real), critic_variables, self.critic_optimizer, state
            )
        generator_loss, _ = training.optimizer_step(
            lambda: (self.generator_loss(batch_size), None),
            generator_variables,
            self.generator_optimizer,
            state,
        )
        return training.finish_train_step(
            state, lambda: self._logs(critic_loss, penalty, generator_loss)
        )

    def critic_losses(self, real: Any) -> tuple[Any, Any]:
        """Returns ``(critic_loss, gradient_penalty)`` on ``real`` and fresh fakes.

        No gradient reaches the generator through the fakes.
        """
        batch_size = keras.ops.shape(real)[0]
        fake = self.generator(self.sample_latent(batch_size), training=True)
        fake = keras.ops.stop_gradient(fake)
        real_scores = self.critic(real, training=True)
        fake_scores = self.critic(fake, training=True)
        penalty = compute_gradient_penalty(
            self.critic, real, fake, lambda_gp=self.lambda_gp, seed=self.seed_generator
        )
        wasserstein = keras.ops.mean(fake_scores) - keras.ops.mean(real_scores)
        return wasserstein + penalty, penalty

    def generator_loss(self, batch_size: Any) -> Any:
        """Returns ``-mean D(G(z))`` on ``batch_size`` fresh latent codes."""
        fake = self.generator(self.sample_latent(batch_size), training=True)
        return -keras.ops.mean(self.critic(fake, training=True))

    def _real_batch(self, data):
        real = keras.utils.unpack_x_y_sample_weight(data)[0]
        return keras.ops.cast(real, self.critic.compute_dtype)

    def _variable_groups(self):
        return self.critic.trainable_variables, self.generator.trainable_variables

    def _logs(self, critic_loss, penalty, generator_loss):
        self.critic_loss_tracker.update_state(critic_loss)
        self.penalty_tracker.update_state(penalty)
        self.generator_loss_tracker.update_state(generator_loss)
        return {metric.name: metric.result() for metric in self.metrics}

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "latent_dim": self.latent_dim,
            "critic_steps": self.critic_steps,
            "lambda_gp": self.lambda_gp,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "WGANGPModel":
        config = dict(config)
        for key in ("generator", "critic"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


class _OptimizerPair(keras.optimizers.Optimizer):
    """The critic's and the generator's optimizers seen by ``fit`` as one.

    ``fit`` builds, saves and (on jax) threads ``model.optimizer.variables``
    through the train step; this exposes both optimizers' variables, critic
    first, and builds each on its own sub-model's weights.
    """

    def __init__(self, critic_optimizer, generator_optimizer, variable_groups):
        super().__init__(learning_rate=0.0, name="wgan_gp_optimizers")
        self.critic_optimizer = critic_optimizer
        self.generator_optimizer = generator_optimizer
        self._variable_groups = variable_groups

    @property
    def variables(self):
        return [*self.critic_optimizer.variables, *self.generator_optimizer.variables]

    @property
    def iterations(self):
        return self.generator_optimizer.iterations

    def build(self, variables):
        critic_variables, generator_variables = self._variable_groups()
        if not self.critic_optimizer.built:
            self.critic_optimizer.build(critic_variables)
        if not self.generator_optimizer.built:
            self.generator_optimizer.build(generator_variables)
        self.built = True

    def save_own_variables(self, store):
        """Saves nothing: each wrapped optimizer saves its own variables."""

    def load_own_variables(self, store):
        """Loads nothing: each wrapped optimizer loads its own variables."""


def _optimizer(optimizer: Any) -> Any:
    if optimizer is None:
        return keras.optimizers.Adam(learning_rate=1e-4, beta_1=0.0, beta_2=0.9)
    return keras.optimizers.get(optimizer)
