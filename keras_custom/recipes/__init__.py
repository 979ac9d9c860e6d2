"""Recipes: the networks and hyperparameters shared by demos, tests and notebooks.

The demos (`keras_custom.demo`), the slow quality tests, the benchmarks and
the notebooks train their models with these recipes, so that they all train
exactly the same models the same way, on the bundled 8x8 digits or on
gymnasium's CartPole. One module per family of models:

- `data`: the one loader of the digits, `load_digits`, and the labeled
  split of the semi-supervised recipes, `label_split`;
- `generative`: the recipes of `GAN`, `WGANGP`, `ConditionalGAN` and `VAE`,
  with their networks in `generative_networks` and the judge of the
  generated digits in `generative_scores`;
- `diffusion`: the recipes of the unconditional and class-conditional
  `DiffusionModel`, with their residual MLP denoiser;
- `self_supervised`: the networks and recipe of `SimCLR`, `SimSiam`, `BYOL`,
  `BarlowTwins` and `VICReg`, with the scores of their features in
  `self_supervised_scores`;
- `semi_supervised`: the recipes of `FixMatch` and `MeanTeacher` and their
  supervised baselines; `distillation`: those of the `Distiller`;
- `robust`: the recipes of `AdversarialModel` and `SharpnessAwareModel`, and
  an FGSM attack;
- `classifiers`: the convolutional classifier that `distillation`,
  `semi_supervised` and `robust` train, and its accuracy;
- `reinforcement`: the `ActorCritic`, `DQN` and `PPO` agents for CartPole
  (and `PPO` for Acrobot and Pendulum), and a training loop with time,
  update and environment-step budgets.

`cache` keeps what the `train_*` recipes trained, for the processes of one
run, when `KERAS_CUSTOM_RECIPE_CACHE` names a directory (the test session
and CI set it): an identical later call loads the model instead of training
it again.

Each module is imported on its own (`from keras_custom.recipes import
generative`); this package imports none of them.
"""
