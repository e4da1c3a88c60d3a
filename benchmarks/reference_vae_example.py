"""The reference: the PyTorch VAE example (github.com/pytorch/examples, vae/main.py), trained the
way it trains: torchvision MNIST + ToTensor + DataLoader, a per-step `loss.item()`, and a test
pass each epoch. Only its image saving and argument parsing are left out; the model, loss,
optimiser and data path are the example's. Prints one JSON line with the final test loss.

    python benchmarks/reference_vae_example.py DATA_DIR EPOCHS [SEED]
"""

import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn, optim
from torchvision import datasets, transforms


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def main():
    data_dir, epochs = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    started = time.perf_counter()
    torch.manual_seed(seed)
    device = torch.device("cpu")
    train_loader = torch.utils.data.DataLoader(
        datasets.MNIST(data_dir, train=True, download=False, transform=transforms.ToTensor()),
        batch_size=128, shuffle=True)
    test_loader = torch.utils.data.DataLoader(
        datasets.MNIST(data_dir, train=False, transform=transforms.ToTensor()),
        batch_size=128, shuffle=False)
    model = VAE().to(device)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    test_loss = float("nan")
    for _epoch in range(1, epochs + 1):
        model.train()
        train_loss = 0
        for data, _ in train_loader:
            data = data.to(device)
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        model.eval()
        test_loss = 0
        with torch.no_grad():
            for data, _ in test_loader:
                data = data.to(device)
                recon_batch, mu, logvar = model(data)
                test_loss += loss_function(recon_batch, data, mu, logvar).item()
        test_loss /= len(test_loader.dataset)
    print(json.dumps({"test_elbo": test_loss, "epochs": epochs,
                      "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
