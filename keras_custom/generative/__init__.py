"""Generative models: GAN, WGANGP, ConditionalGAN, VAE and DiffusionModel."""

from keras_custom.generative.conditional_gan import ConditionalGAN
from keras_custom.generative.diffusion_model import DiffusionModel
from keras_custom.generative.gan import GAN
from keras_custom.generative.vae import VAE
from keras_custom.generative.wgan_gp import WGANGP

__all__ = ["GAN", "VAE", "WGANGP", "ConditionalGAN", "DiffusionModel"]
