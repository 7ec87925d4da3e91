"""A user project: images in class folders, read by torchvision's ImageFolder."""
