"""The corpora's own labels mapped onto the label set (``FeatureSpec.labels``), and their splits.

Every offline reader (extraction, the encoders' trainers, calibration, baselines) takes its label
maps and speaker splits from here. ``None`` in a map: the source label has no match in the set.
"""

from __future__ import annotations

# The shared data's three sets the recipe extracts, one per modality: {name: (kind, folder in the data)}.
SOURCES = {"fer2013": ("image", "fer2013_48"), "ravdess": ("audio", "ravdess_speech_16k"), "text": ("text", "text")}

# RAVDESS: the emotion code in the file name, then onto the label set (calm counts as neutral).
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
RAVDESS_TO_LABEL = {"neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
                    "fearful": "fearful", "disgust": "disgusted", "surprised": "surprised"}
# RAVDESS speaker-independent splits, by actor number.
TRAIN_ACTORS = tuple(range(1, 17))
VAL_ACTORS = tuple(range(17, 21))
TEST_ACTORS = tuple(range(21, 25))

# FER2013: the folder names, and its splits.
FER_TO_LABEL = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
                "fear": "fearful", "disgust": "disgusted", "surprise": "surprised"}
FER_SPLITS = ("train", "val", "test")

# MELD, EmoryNLP and CMU-MOSI transcripts.
MELD_EMOTIONS = {"neutral": "neutral", "joy": "happy", "sadness": "sad", "anger": "angry",
                 "fear": "fearful", "disgust": "disgusted", "surprise": "surprised"}
MELD_SENTIMENTS = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
EMORYNLP_EMOTIONS = {"Neutral": "neutral", "Joyful": "happy", "Sad": "sad", "Mad": "angry", "Scared": "fearful"}
EMORYNLP_DROPPED = ("Peaceful", "Powerful")  # no match in the label set
MOSI_SCALE = 3.0  # MOSI scores lie in [-3, 3]


def actor_of(speaker: str) -> int:
    """RAVDESS actor number of an extraction record's speaker ("ravdess_07" -> 7)."""
    return int(speaker.rsplit("_", 1)[1])
