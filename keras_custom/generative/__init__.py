"""Generative models: GAN, WGANGP, ConditionalGAN and VAE."""

from keras_custom.generative.conditional_gan import ConditionalGAN
from keras_custom.generative.gan import GAN
from keras_custom.generative.vae import VAE
from keras_custom.generative.wgan_gp import WGANGP

__all__ = ["GAN", "VAE", "WGANGP", "ConditionalGAN"]
