"""SAMPLE DATA — invented posts about Kota Kupang for the demo's stand-in servers.

Every post below was written for this project: no real person wrote them, no real account is named.
They mix Bahasa Indonesia and Kupang Malay (sonde = tidak, beta = saya, katong = kita, su = sudah,
pi = pergi, pung = punya), the way citizens of Kupang write on X, Facebook and Instagram.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplePost:
    """One invented post: where it appears, who wrote it (a made-up handle), and its text."""

    platform: str  # twitter | facebook | instagram
    kind: str  # mention | search | feed | comment | tagged | ig_comment | ig_tagged
    author: str
    text: str
    minutes_ago: int


CITY_ACCOUNTS = {
    "twitter": {"id": "1700000000000000001", "username": "PemkotKupang"},
    "facebook": {"id": "100200300400500", "name": "Pemerintah Kota Kupang"},
    "instagram": {"id": "17841400000000001", "username": "pemkot.kupang"},
}

SAMPLE_POSTS: tuple[SamplePost, ...] = (
    # X / Twitter mentions of the city account.
    SamplePost(
        "twitter",
        "mention",
        "nona_oebufu",
        "@PemkotKupang jalan di Oebufu depan SD Inpres su rusak parah, lubang besar sekali. Motor jatuh tadi pagi. Tolong diperbaiki segera!",
        12,
    ),
    SamplePost(
        "twitter",
        "mention",
        "bung_alak",
        "@PemkotKupang air PDAM di Namosain sonde mengalir su satu minggu. Katong harus beli air tangki terus. Mohon perhatian!",
        25,
    ),
    SamplePost(
        "twitter",
        "mention",
        "kupang_pagi",
        "@PemkotKupang sampah di pinggir jalan Oeba menumpuk dan bau busuk, truk sampah sonde datang dari hari Senin",
        40,
    ),
    SamplePost(
        "twitter",
        "mention",
        "anak_tdm",
        "@PemkotKupang lampu jalan di TDM mati semua, malam gelap sekali, rawan kejahatan",
        55,
    ),
    SamplePost(
        "twitter",
        "mention",
        "mama_penfui",
        "@PemkotKupang terima kasih untuk perbaikan jalan di Penfui, sekarang su mulus 🙏",
        70,
    ),
    SamplePost(
        "twitter",
        "mention",
        "kk_oesapa",
        "@PemkotKupang urus KTP elektronik di Dukcapil su tiga bulan belum jadi juga, blanko habis terus alasannya",
        90,
    ),
    SamplePost(
        "twitter",
        "mention",
        "ojek_kupang",
        "@PemkotKupang angkot di Jalan El Tari parkir sembarangan, bikin macet tiap sore. Dishub di mana?",
        110,
    ),
    SamplePost(
        "twitter",
        "mention",
        "pemuda_liliba",
        "@PemkotKupang selamat ulang tahun Kota Kupang! Semoga makin maju 🎉",
        130,
    ),
    SamplePost(
        "twitter",
        "mention",
        "bapa_sikumana",
        "@PemkotKupang got di Sikumana tersumbat, tiap hujan air masuk rumah warga. Sonde ada yang urus",
        150,
    ),
    SamplePost(
        "twitter",
        "mention",
        "warga_kolhua",
        "@PemkotKupang puskesmas di Kolhua antrean panjang sekali, dokter datang jam 10, pasien su tunggu dari jam 7",
        170,
    ),
    # X recent search (the city's name with complaint words).
    SamplePost(
        "twitter",
        "search",
        "be_orang_kupang",
        "Kupang ini jalan rusak di mana-mana, lubang di Jalan Frans Seda su dalam sekali, bahaya untuk motor",
        35,
    ),
    SamplePost(
        "twitter",
        "search",
        "lu_tau_sa",
        "Pemadaman listrik lagi di Kota Kupang, beta pung kulkas rusak. Capek deh",
        60,
    ),
    SamplePost(
        "twitter",
        "search",
        "katong_bisa",
        "Banjir di Kelapa Lima karena drainase sonde berfungsi, air setinggi lutut di jalan",
        80,
    ),
    SamplePost(
        "twitter",
        "search",
        "kupang_kuliner",
        "Jalan-jalan sore di pantai Lasiana, sunset bagus sekali hari ini #Kupang",
        100,
    ),
    # Facebook: visitor posts on the city page, and comments under the page's own posts.
    SamplePost(
        "facebook",
        "feed",
        "Yohanes Ndun",
        "Selamat siang Bapak Wali Kota. Mohon perhatian untuk jalan masuk di Kelurahan Naimata, sudah rusak sejak tahun lalu dan belum ada perbaikan. Anak-anak sekolah susah lewat kalau hujan.",
        20,
    ),
    SamplePost(
        "facebook",
        "feed",
        "Maria Tefa",
        "Pelayanan di kantor Kelurahan Bakunase sangat lambat, petugas sering tidak ada di tempat waktu jam kerja. Mohon dievaluasi.",
        45,
    ),
    SamplePost(
        "facebook",
        "feed",
        "Daniel Bessie",
        "Sampah di TPS Oepura sudah penuh sejak seminggu, bau sampai ke rumah warga. Tolong diangkut.",
        65,
    ),
    SamplePost(
        "facebook",
        "comment",
        "Ina Lake",
        "Pak, air bersih di Fatukoa sonde pernah mengalir. Katong beli air tangki 150 ribu seminggu. Kapan ada jaringan PDAM?",
        15,
    ),
    SamplePost("facebook", "comment", "Frans Manafe", "Mantap Pemkot, lanjutkan programnya 👍", 30),
    SamplePost(
        "facebook",
        "comment",
        "Oma Lenggu",
        "Banyak anjing liar di sekitar Pasar Kasih Naikoten, sudah ada yang digigit. Mohon ditertibkan.",
        50,
    ),
    SamplePost(
        "facebook",
        "comment",
        "Rian Tallo",
        "Jalan di Manutapen rusak berat, lubang di mana-mana, truk besar lewat terus. Kapan diaspal?",
        75,
    ),
    SamplePost(
        "facebook",
        "comment",
        "Nona Kase",
        "Lampu lalu lintas di perempatan Kuanino mati sudah tiga hari, hampir tabrakan tadi",
        95,
    ),
    SamplePost(
        "facebook",
        "tagged",
        "Komunitas Peduli Kupang",
        "Bersama warga membersihkan pantai Oesapa hari Minggu. Terima kasih semua relawan! @Pemerintah Kota Kupang",
        120,
    ),
    # Instagram: comments on the city's media and tagged media.
    SamplePost(
        "instagram",
        "ig_comment",
        "nonakupang",
        "min tolong jalan di belakang RSUD Kupang di Fontein itu rusak parah sonde bisa lewat oto",
        18,
    ),
    SamplePost(
        "instagram",
        "ig_comment",
        "beta.anak.alak",
        "Pak, kapan sekolah di Alak dapat guru tambahan? Satu guru pegang dua kelas",
        38,
    ),
    SamplePost("instagram", "ig_comment", "kupang_keren", "Bagus sekali kegiatan ini 🔥🔥", 58),
    SamplePost(
        "instagram",
        "ig_comment",
        "mace_oebobo",
        "Pungutan liar di pasar Oebobo, pedagang dimintai uang keamanan tiap hari tanpa karcis. Tolong ditindak",
        78,
    ),
    SamplePost(
        "instagram",
        "ig_tagged",
        "foto_kupang",
        "Genangan air di Jalan Timor Raya depan Pasir Panjang tiap hujan, drainase tersumbat sampah @pemkot.kupang",
        88,
    ),
    SamplePost(
        "instagram",
        "ig_tagged",
        "jalan2_ntt",
        "Kuliner malam di Kampung Solor, enak dan murah! @pemkot.kupang",
        140,
    ),
    # A copy-paste complaint across platforms (near-duplicate group).
    SamplePost(
        "facebook",
        "comment",
        "Yakob Tse",
        "Jalan di Oebufu depan SD Inpres sudah rusak parah, lubang besar sekali. Motor jatuh tadi pagi. Tolong diperbaiki segera!",
        11,
    ),
)
