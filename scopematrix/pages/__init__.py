"""Page objects for HubSpot's hosted install flow. Locators live here and nowhere else."""
