"""Grid search over network hyperparameters with scikit-learn, on a bank of simulations.

The analytic Gaussian model (theta ~ N(0, I_2), x_n ~ N(theta, I), n = 1..20) as a batched
simulator; a fixed bank of 3000 simulations; GridSearchCV ranks the candidates by held-out
mean log q(theta | x) (``est.score``) and refits the best on the whole bank.

Run:  python examples/grid_search.py
"""

import time

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, cross_val_score

from skabi import AmortizedPosterior, Simulator, make_adapter
from skabi.adapters import Rename
from skabi.bank import SimulationBank
from skabi.networks import CouplingFlow, DeepSet


class Gaussian(Simulator):
    def simulate(self, batch_size, rng):
        theta = rng.normal(size=(batch_size, 2))
        return {"theta": theta, "x": theta[:, None, :] + rng.normal(size=(batch_size, 20, 2))}


def main():
    bank = SimulationBank(Gaussian().sample(3000, random_state=0))
    est = AmortizedPosterior(
        adapter=make_adapter(Rename("theta", "inference_variables"),
                             Rename("x", "summary_variables")),
        inference_network=CouplingFlow(subnet_width=32),
        summary_network=DeepSet(width=32),
        epochs=10, batch_size=64, learning_rate=1e-3, random_state=0,
    )
    grid = GridSearchCV(est, {"inference_network__depth": [2, 4],
                              "summary_network__summary_dim": [2, 4]}, cv=3)
    start = time.perf_counter()
    grid.fit(bank)
    print(f"grid search: 4 candidates x 3 folds + refit in {time.perf_counter() - start:.0f} s")
    table = pd.DataFrame(grid.cv_results_)[["params", "mean_test_score", "std_test_score",
                                            "rank_test_score"]]
    print(table.to_string(index=False))
    print("best:", grid.best_params_)

    test = Gaussian().sample(500, random_state=1)
    n = 20
    exact_mean = test["x"].sum(axis=1) / (n + 1)
    sd = np.sqrt(1 / (n + 1))
    exact = np.mean(np.sum(-0.5 * ((test["theta"] - exact_mean) / sd) ** 2
                           - np.log(sd * np.sqrt(2 * np.pi)), axis=1))
    print(f"held-out score of the refitted best: {grid.score(test):.3f} "
          f"(exact posterior: {exact:.3f})")
    scores = cross_val_score(grid.best_estimator_, bank, cv=3)
    print("cross_val_score of the best:", np.round(scores, 3))


if __name__ == "__main__":
    main()
