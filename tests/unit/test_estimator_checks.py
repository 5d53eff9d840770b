"""scikit-learn's own compliance checks on the group-sparse estimators.

nilearn 0.13.1 runs the same checks on its ``GroupSparseCovariance`` and
``GroupSparseCovarianceCV`` and expects 3 and 5 of them to fail here (scikit-learn
1.9: ``check_estimator_sparse_array``, ``check_estimator_sparse_matrix``,
``check_estimator_sparse_tag``, plus ``check_estimators_dtypes`` and
``check_dtype_object`` for the CV estimator). Ours are expected to pass them all:
the expected-failures list is empty. (scikit-learn itself skips
``check_array_api_input`` unless ``SCIPY_ARRAY_API=1`` is set.)
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from sparseconn.covariance import GroupSparseCovariance, GroupSparseCovarianceCV

# Small grids and few sweeps keep the run short (the checks fit on tiny random
# data, where convergence is beside the point), as nilearn does.
ESTIMATORS = [
    GroupSparseCovariance(max_iter=5),
    GroupSparseCovarianceCV(alphas=3, n_refinements=2, max_iter_cv=5, max_iter=5),
]


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
