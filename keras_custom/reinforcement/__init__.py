"""Reinforcement learning through `fit()`: DQN, actor-critic, PPO and their data."""

from keras_custom.reinforcement.actor_critic import ActorCritic
from keras_custom.reinforcement.advantages import generalized_advantage_estimation
from keras_custom.reinforcement.dqn import DQN
from keras_custom.reinforcement.episode_return import EpisodeReturn
from keras_custom.reinforcement.evaluate_policy import evaluate_policy
from keras_custom.reinforcement.experience_dataset import ExperienceDataset
from keras_custom.reinforcement.policy_evaluation import PolicyEvaluation
from keras_custom.reinforcement.ppo import PPO
from keras_custom.reinforcement.ppo_rollout_dataset import PPORolloutDataset
from keras_custom.reinforcement.replay_buffer_dataset import ReplayBufferDataset
from keras_custom.reinforcement.rollout_dataset import RolloutDataset

__all__ = [
    "ActorCritic",
    "DQN",
    "EpisodeReturn",
    "ExperienceDataset",
    "PPO",
    "PPORolloutDataset",
    "PolicyEvaluation",
    "ReplayBufferDataset",
    "RolloutDataset",
    "evaluate_policy",
    "generalized_advantage_estimation",
]
