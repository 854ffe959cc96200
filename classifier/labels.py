"""Label sets of the three heads, exactly as in the training data's README."""

from __future__ import annotations

RELEVANCE_LABELS = ("keluhan", "respon", "bukan")
TOPIC_LABELS = (
    "perhubungan",
    "infrastruktur",
    "ketertiban_kebersihan",
    "air_sda",
    "lainnya",
    "lingkungan_hidup",
    "kriminalitas",
    "sampah",
    "adminduk",
    "pendidikan",
    "perizinan",
    "kesehatan",
)
AGENCY_LABELS = (
    "KEWILAYAHAN",
    "PUPR",
    "SOSIAL",
    "PERHUBUNGAN",
    "DUKCAPIL",
    "LINGKUNGAN_HIDUP",
    "PEMDA_UMUM",
    "PERIZINAN",
    "KESEHATAN",
    "PENDIDIKAN",
    "PERTANIAN_PANGAN",
    "SATPOLPP",
    "EKONOMI_UMKM",
    "TENAGA_KERJA",
    "KOMINFO",
    "PERUMAHAN",
    "KEPEGAWAIAN",
    "KELUARGA_PPA",
    "PEMUDA_OLAHRAGA",
    "AIR_MINUM",
    "LAINNYA",
    "PENDAPATAN",
    "BENCANA_DAMKAR",
)
LABELS = {"relevance": RELEVANCE_LABELS, "topic": TOPIC_LABELS, "agency": AGENCY_LABELS}

# What an unreadable post is labelled with (score 0.0 and Prediction.unusable say why).
FALLBACK_LABELS = {"relevance": "bukan", "topic": "lainnya", "agency": "LAINNYA"}

# Label bridges between the two sources, used only to add training rows (never evaluation rows):
# LAPOR! reports disposed to these agencies teach the tweet topic head its rare topics ...
AGENCY_TO_TOPIC = {
    "DUKCAPIL": "adminduk",
    "KESEHATAN": "kesehatan",
    "PENDIDIKAN": "pendidikan",
    "PERIZINAN": "perizinan",
}
# ... and complaint tweets of these topics show the agency head how citizens write on social media.
TOPIC_TO_AGENCY = {
    "perhubungan": "PERHUBUNGAN",
    "infrastruktur": "PUPR",
    "adminduk": "DUKCAPIL",
    "pendidikan": "PENDIDIKAN",
    "kesehatan": "KESEHATAN",
    "perizinan": "PERIZINAN",
    "sampah": "LINGKUNGAN_HIDUP",
    "lingkungan_hidup": "LINGKUNGAN_HIDUP",
    "ketertiban_kebersihan": "SATPOLPP",
}
