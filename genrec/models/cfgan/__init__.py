"""CFGAN (Chae et al., CIKM 2018): a conditional GAN whose generator outputs a user's preferences.

`config` (the family's config section, importable without torch), `networks` (generator and
discriminator, forward passes only), `trainer` (one adversarial epoch at a time, for the training
loop) and `model` (the recommender).
"""
