// placeholder until budgetctl lands
