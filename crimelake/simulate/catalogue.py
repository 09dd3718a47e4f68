"""Fixed vocabularies and statistical targets of the simulator.

Shares come from /work/shared/data/calibration.md (measured on the data.police.uk archive, 2022) and, where the
calibration file says nothing, from the real March 2023 sample files (stop-and-search values, BTP and City of London
category mixes, outcome types).
"""

from __future__ import annotations

import numpy as np

# (taxonomy slug, data.police.uk "Crime type", national share of street rows)
CATEGORIES: tuple[tuple[str, str, float], ...] = (
    ("violent-crime", "Violence and sexual offences", 0.367),
    ("anti-social-behaviour", "Anti-social behaviour", 0.172),
    ("public-order", "Public order", 0.091),
    ("criminal-damage-arson", "Criminal damage and arson", 0.089),
    ("other-theft", "Other theft", 0.068),
    ("shoplifting", "Shoplifting", 0.051),
    ("vehicle-crime", "Vehicle crime", 0.047),
    ("burglary", "Burglary", 0.037),
    ("drugs", "Drugs", 0.025),
    ("other-crime", "Other crime", 0.019),
    ("bicycle-theft", "Bicycle theft", 0.012),
    ("theft-from-the-person", "Theft from the person", 0.008),
    ("possession-of-weapons", "Possession of weapons", 0.008),
    ("robbery", "Robbery", 0.006),
)
SLUGS = tuple(c[0] for c in CATEGORIES)
CRIME_TYPES = tuple(c[1] for c in CATEGORIES)
NATIONAL_MIX = np.array([c[2] for c in CATEGORIES])
CAT = {slug: i for i, slug in enumerate(SLUGS)}
ASB = CAT["anti-social-behaviour"]
N_CAT = len(CATEGORIES)

# Forces whose real mix differs sharply from the national one (March 2023 files). BTP records no anti-social
# behaviour in its street file.
SPECIAL_MIX = {
    "btp": {"violent-crime": 0.208, "theft-from-the-person": 0.175, "public-order": 0.170, "other-theft": 0.134,
            "criminal-damage-arson": 0.089, "bicycle-theft": 0.056, "drugs": 0.051, "shoplifting": 0.039,
            "robbery": 0.030, "vehicle-crime": 0.023, "possession-of-weapons": 0.016, "other-crime": 0.008,
            "burglary": 0.002},
    "city-of-london": {"other-theft": 0.213, "violent-crime": 0.200, "theft-from-the-person": 0.165,
                       "shoplifting": 0.086, "drugs": 0.076, "anti-social-behaviour": 0.054, "public-order": 0.049,
                       "burglary": 0.035, "criminal-damage-arson": 0.032, "other-crime": 0.024, "vehicle-crime": 0.023,
                       "bicycle-theft": 0.021, "robbery": 0.016, "possession-of-weapons": 0.006},
}


def mix_vector(shares: dict[str, float]) -> np.ndarray:
    v = np.array([shares.get(s, 0.0) for s in SLUGS])
    return v / v.sum()


# Seasonality: (amplitude, peak month). Violence and anti-social behaviour peak in summer, burglary in winter.
SEASON = {
    "violent-crime": (0.08, 7), "anti-social-behaviour": (0.20, 7), "public-order": (0.07, 7),
    "criminal-damage-arson": (0.06, 10), "other-theft": (0.05, 8), "shoplifting": (0.05, 12),
    "vehicle-crime": (0.06, 11), "burglary": (0.12, 12), "drugs": (0.05, 6), "other-crime": (0.03, 3),
    "bicycle-theft": (0.28, 8), "theft-from-the-person": (0.08, 12), "possession-of-weapons": (0.06, 8),
    "robbery": (0.08, 12),
}

# Mild national trend per year (log scale); shoplifting rose steadily in 2023-24.
TREND = {"shoplifting": 0.08, "anti-social-behaviour": -0.05, "public-order": -0.02, "theft-from-the-person": 0.04}

# "Last outcome category" for crimes with a Crime ID: the calibration shares of all rows without the 0.210 of
# rows that have none, topped up with the rarer real categories.
LAST_OUTCOMES = {
    "Unable to prosecute suspect": 0.280, "Investigation complete; no suspect identified": 0.251,
    "Under investigation": 0.107, "Status update unavailable": 0.059, "Awaiting court outcome": 0.030,
    "Local resolution": 0.018, "Action to be taken by another organisation": 0.011, "Court result unavailable": 0.020,
    "Offender given a caution": 0.006, "Further action is not in the public interest": 0.004,
    "Formal action is not in the public interest": 0.002, "Further investigation is not in the public interest": 0.002,
}
# What the outcomes file records for a crime whose last outcome is final; None: no outcome row yet.
OUTCOME_ROW = {
    "Unable to prosecute suspect": "Unable to prosecute suspect",
    "Investigation complete; no suspect identified": "Investigation complete; no suspect identified",
    "Under investigation": None, "Status update unavailable": None,
    "Awaiting court outcome": "Suspect charged", "Court result unavailable": "Suspect charged",
    "Local resolution": "Local resolution",
    "Action to be taken by another organisation": "Action to be taken by another organisation",
    "Offender given a caution": "Offender given a caution",
    "Further action is not in the public interest": "Further action is not in the public interest",
    "Formal action is not in the public interest": "Formal action is not in the public interest",
    "Further investigation is not in the public interest": "Further investigation is not in the public interest",
}

# Landmark names data.police.uk uses for anonymised map points, by kind of place.
PLACE_NAMES = {
    "shop": ["Supermarket", "Shopping Area", "Supermarket", "Shopping Area", "Petrol Station"],
    "night": ["Nightclub", "High Street", "Market Place", "Bridge Street", "Church Street", "Theatre/Concert Hall"],
    "parking": ["Parking Area", "Parking Area", "Bus/Coach Station", "Petrol Station"],
    "poi": ["Sports/Recreation Area", "Further/Higher Educational Building", "Hospital", "Police Station",
            "Pedestrian Subway", "Conference/Exhibition Centre"],
}
STREET_FIRST = ["Church", "Mill", "Station", "Park", "Victoria", "Queen's", "King's", "Oak", "Elm", "Ash", "Willow",
                "Meadow", "Manor", "Orchard", "Chapel", "School", "Spring", "Brook", "Green", "Grange", "Albert",
                "York", "Windsor", "George", "Alexandra", "Cedar", "Beech", "Holly", "Maple", "Westfield", "Northfield",
                "Highfield", "Fairfield", "Rose", "Castle", "Abbey", "Priory", "Bridge", "Market", "Wood", "Hill",
                "Forest", "Lime", "Cromwell", "Nelson", "Stanley", "Richmond", "Clarence", "Howard", "Kingsway"]
STREET_LAST = ["Road", "Street", "Lane", "Close", "Avenue", "Way", "Drive", "Crescent", "Gardens", "Court", "Place",
               "Grove", "Walk", "Terrace", "Rise", "View", "Mews"]
WELSH_STREETS = ["Heol y Nant", "Ffordd yr Orsaf", "Stryd Fawr", "Heol y Parc", "Ffordd Penrhos", "Heol Maes",
                 "Lôn Isaf", "Ffordd Caergybi", "Heol yr Eglwys", "Stryd y Castell", "Maes y Dref", "Lôn Goed"]
STATION_SUFFIX = ["", " Central", " North", " South", " East", " West", " Parkway", " Junction", " Road", " Park",
                  " Bridge", " Lane", " Hill", " Green", " Street"]

# Stop and search values and shares as published (March 2023 sample).
SS_TYPE = {"Person search": 0.918, "Person and Vehicle search": 0.072, "Vehicle search": 0.010}
SS_GENDER = {"Male": 0.838, "Female": 0.102, "": 0.059, "Other": 0.001}
SS_AGE = {"18-24": 0.281, "10-17": 0.216, "over 34": 0.204, "25-34": 0.199, "": 0.094, "under 10": 0.006}
SS_OFFICER_ETHNICITY = {"White": 0.693, "Black": 0.150, "Asian": 0.073, "": 0.046, "Other": 0.031, "Mixed": 0.007}
SS_SELF_ETHNICITY = {
    "White": {"White - English/Welsh/Scottish/Northern Irish/British": 0.72, "White - Any other White background": 0.11,
              "White - Irish": 0.013, "White - Gypsy or Irish Traveller": 0.002, "Other ethnic group - Not stated": 0.14,
              "": 0.015},
    "Black": {"Black/African/Caribbean/Black British - African": 0.28,
              "Black/African/Caribbean/Black British - Caribbean": 0.15,
              "Black/African/Caribbean/Black British - Any other Black/African/Caribbean background": 0.2,
              "Mixed/Multiple ethnic groups - White and Black Caribbean": 0.08, "Other ethnic group - Not stated": 0.27,
              "": 0.02},
    "Asian": {"Asian/Asian British - Pakistani": 0.22, "Asian/Asian British - Any other Asian background": 0.3,
              "Asian/Asian British - Indian": 0.1, "Asian/Asian British - Bangladeshi": 0.09,
              "Asian/Asian British - Chinese": 0.02, "Other ethnic group - Not stated": 0.25, "": 0.02},
    "Other": {"Other ethnic group - Any other ethnic group": 0.45, "Other ethnic group - Arab": 0.05,
              "Other ethnic group - Not stated": 0.45, "": 0.05},
    "Mixed": {"Mixed/Multiple ethnic groups - Any other Mixed/Multiple ethnic background": 0.4,
              "Mixed/Multiple ethnic groups - White and Black African": 0.15,
              "Mixed/Multiple ethnic groups - White and Asian": 0.15, "Other ethnic group - Not stated": 0.3},
    "": {"Other ethnic group - Not stated": 0.7, "": 0.3},
}
# Legislation -> (share, {object of search: share})
SS_LEGISLATION = {
    "Misuse of Drugs Act 1971 (section 23)": (0.656, {"Controlled drugs": 1.0}),
    "Police and Criminal Evidence Act 1984 (section 1)": (0.333, {
        "Offensive weapons": 0.30, "Stolen goods": 0.23, "Article for use in theft": 0.21,
        "Articles for use in criminal damage": 0.10, "Anything to threaten or harm anyone": 0.10,
        "Evidence of offences under the Act": 0.04, "Fireworks": 0.02}),
    "Firearms Act 1968 (section 47)": (0.005, {"Firearms": 1.0}),
    "Criminal Justice and Public Order Act 1994 (section 60)": (0.002, {"Offensive weapons": 1.0}),
    "Psychoactive Substances Act 2016 (s36(2))": (0.002, {"Psychoactive substances": 1.0}),
    "": (0.002, {"": 1.0}),
}
SS_OUTCOME = {"A no further action disposal": 0.645, "Arrest": 0.130, "Community resolution": 0.120,
              "Summons / charged by post": 0.015, "Khat or Cannabis warning": 0.012, "": 0.07,
              "Caution (simple or conditional)": 0.006, "Penalty Notice for Disorder": 0.002}

# Council report categories (keys of the la_reports label mapping) -> (share, subcategories)
COUNCIL_REPORTS = {
    "Fly-tipping": (0.26, ["Household waste", "Black bags", "Building materials", "White goods", "Tyres"]),
    "Noise nuisance": (0.19, ["Amplified music", "Barking dog", "Alarm", "Party", "Construction noise"]),
    "Nuisance neighbours": (0.08, ["Verbal abuse", "Boundary dispute", "Intimidation"]),
    "Rowdy or inconsiderate behaviour": (0.08, ["Youths gathering", "Begging", "Off-road motorbikes"]),
    "Street drinking": (0.03, ["Street drinking"]),
    "Drug related nuisance": (0.05, ["Drug paraphernalia", "Suspected dealing", "Cannabis smell"]),
    "Abandoned vehicle": (0.07, ["Untaxed", "Burnt out", "Dumped"]),
    "Dog fouling": (0.05, ["Footpath", "Park", "Play area"]),
    "Littering": (0.05, ["Street litter", "Overflowing bin", "Cigarette ends"]),
    "Graffiti": (0.09, ["Offensive", "Tag", "Mural"]),
    "Vandalism": (0.05, ["Bus shelter", "Street furniture", "Public building"]),
}

SOCIAL_CARE_RATES = {  # per 1,000 residents per quarter, before the deprivation gradient
    "children_in_need_referrals": 2.6,
    "child_protection_plans_started": 0.40,
    "looked_after_children_started": 0.18,
    "early_help_assessments": 3.2,
}
