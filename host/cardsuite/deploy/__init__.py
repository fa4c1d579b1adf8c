"""Post-issuance deployment: card, application and key profiles, the deployer, the card inventory."""
