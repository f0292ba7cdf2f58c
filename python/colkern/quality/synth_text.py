"""What generated pages say: built-in English and Japanese word lists, and the random sentences,
names, dates, addresses, phone numbers, prices and form values drawn from them.

Everything is drawn from the caller's numpy Generator, in a fixed order, so one seed always gives
the same text; nothing is downloaded. colkern.quality.synth lays the text out on pages.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

EN_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but "
    "have an they you were her she there been one all we their has would when if so no will more out "
    "can who what time up some other into two could only new these may first then do any like my now "
    "over such our man me even most made after also did many before must through back years where much "
    "your way well down should because each just those people how too little state good very make world "
    "still own see men work long get here between both life being under never day same another know "
    "while last might us great old year off come since against go came right used take three states "
    "himself few house use during without again place around however home small found thought went say "
    "part once general high upon school every does got united left number course war until always away "
    "something fact though water less public put think almost hand enough far took head yet government "
    "system better set told nothing night end why called didn eyes find going look asked later knew point "
    "next program city business give group toward young days let room president side social given present "
    "several order national possible rather second face per among form important often things looked early "
    "white case john become large big need four within felt along children saw best church ever least "
    "power development light thing seemed family interest want members mind country area others done "
    "turned although open problem true century toward report market price office service account payment "
    "invoice customer total amount balance delivery order receipt quantity supplier contract schedule "
    "meeting project budget review quarter monthly annual support request approval document record"
).split()
EN_FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard "
             "Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark "
             "Sandra Paul Ashley Steven Emily Andrew Donna Kevin Michelle Brian Carol George Amanda").split()
EN_LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
            "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
            "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill").split()
EN_STREETS = ("Maple Oak Pine Cedar Elm Washington Lake Hill Park Main Church Mill River Spring "
               "Sunset Highland Forest Meadow Ridge Valley").split()
EN_STREET_TYPES = ("Street", "Avenue", "Road", "Lane", "Drive", "Court", "Boulevard", "Way")
EN_CITIES = ("Springfield", "Riverside", "Fairview", "Madison", "Georgetown", "Franklin", "Clinton",
              "Salem", "Greenville", "Bristol", "Oxford", "Ashland", "Burlington", "Dover", "Milton")
EN_SHOP_A = ("Green", "Corner", "Sunny", "Blue", "Golden", "Fresh", "Happy", "Urban", "Village", "Royal")
EN_SHOP_B = ("Market", "Deli", "Grocer", "Bakery", "Cafe", "Pharmacy", "Foods", "Store", "Mart", "Kitchen")
EN_COMPANIES = ("Northwind Traders Ltd", "Acme Supplies Inc", "Bluebird Logistics LLC", "Harbor Foods Co",
                "Summit Office Partners", "Redwood Engineering Ltd", "Lakeside Printing Co", "Atlas Retail Group")
EN_BANKS = ("First National Bank", "Citizens Savings", "Harbor Credit Union", "Union Trust Bank", "Metro Bank")
EN_ITEMS = ("Coffee beans 250g", "Whole milk 1L", "Sourdough bread", "Free range eggs", "Bananas",
             "Red apples 1kg", "Orange juice", "Greek yogurt", "Cheddar cheese", "Butter 250g",
             "Pasta 500g", "Tomato sauce", "Olive oil", "Chicken breast", "Ground beef", "Salmon fillet",
             "Brown rice 2kg", "Oat cereal", "Green tea", "Dark chocolate", "Paper towels", "Dish soap",
             "Toothpaste", "Shampoo", "Batteries AA", "Notebook A5", "Ballpoint pens", "Sparkling water",
             "Potato chips", "Frozen peas", "Carrots 1kg", "Onions", "Garlic", "Lemons", "Avocado",
             "Croissant", "Bagels 6pk", "Honey 350g", "Peanut butter", "Strawberry jam")
EN_FORM_FIELDS = ("Full name", "Date of birth", "Address", "City", "Phone", "Account number",
                   "Customer ID", "Invoice no", "Date", "Amount due", "Payment method", "Reference",
                   "Department", "Employee no", "Start date", "Policy number", "Postal code", "Occupation")
EN_FORM_TITLES = ("Application Form", "Customer Registration", "Payment Request", "Claim Form",
                   "Account Update", "Employee Details", "Order Form", "Change of Address")
EN_PAYMENT = ("Cash", "Credit card", "Debit card", "Bank transfer", "Cheque")
EN_OCCUPATIONS = ("Engineer", "Teacher", "Nurse", "Accountant", "Designer", "Technician", "Manager")

JA_SURNAMES = ("佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 "
               "吉田 山田 佐々木 山口 松本 井上 木村 林 清水 山崎").split()
JA_GIVEN = "太郎 花子 健一 美咲 翔太 陽子 大輔 由美 誠 恵子 直樹 真由美 拓也 愛 浩二 明美 修 裕子 隆 幸子".split()
JA_PREFS = ("東京都新宿区", "東京都港区", "大阪府大阪市北区", "神奈川県横浜市中区", "愛知県名古屋市中区",
             "京都府京都市左京区", "福岡県福岡市博多区", "北海道札幌市中央区", "兵庫県神戸市中央区", "埼玉県さいたま市")
JA_TOWNS = ("西新宿", "芝公園", "梅田", "山下町", "栄", "吉田本町", "博多駅前", "大通西", "三宮町", "高砂")
JA_SHOPS = ("さくらストア", "まるやま商店", "ひかり書店", "青葉ベーカリー", "みどり薬局", "こだま食堂",
             "ふじ珈琲店", "あおぞらマート", "つばさ文具", "やまと酒店")
JA_BRANCHES = ("新宿店", "渋谷店", "梅田店", "駅前店", "本店", "中央店", "北口店", "南口店")
JA_ITEMS = ("牛乳", "食パン", "りんご", "バナナ", "卵", "豆腐", "納豆", "醤油", "味噌", "緑茶",
             "コーヒー", "弁当", "おにぎり", "鶏肉", "豚肉", "鮭", "白米", "うどん", "そば", "野菜ジュース",
             "ボールペン", "ノート", "電池", "洗剤", "歯ブラシ", "トマト", "玉ねぎ", "にんじん", "キャベツ",
             "チョコレート")
JA_FORM_FIELDS = ("氏名", "フリガナ", "生年月日", "住所", "電話番号", "会社名", "部署", "申請日", "金額",
                   "支払方法", "社員番号", "郵便番号", "契約番号", "備考")
JA_FORM_TITLES = ("申込書", "登録申請書", "経費精算書", "住所変更届", "請求書", "見積書", "注文書", "入会申込書")
JA_KANA_NAMES = ("サトウ タロウ", "スズキ ハナコ", "タカハシ ケンイチ", "タナカ ミサキ", "イトウ ショウタ",
                  "ワタナベ ヨウコ", "ヤマモト ダイスケ", "ナカムラ ユミ")
JA_DEPTS = ("営業部", "総務部", "経理部", "人事部", "開発部", "企画部", "製造部", "広報部")
JA_PAYMENT = ("現金", "クレジットカード", "銀行振込", "電子マネー")
JA_COMPANIES = ("株式会社山田製作所", "東和商事株式会社", "株式会社ひまわり", "日本電機工業株式会社",
                 "株式会社青空システム", "中央物産株式会社")
JA_BANKS = ("みずほ銀行 新宿支店", "三井住友銀行 梅田支店", "りそな銀行 本店", "横浜銀行 関内支店",
            "ゆうちょ銀行 〇一八支店", "北洋銀行 札幌支店")
JA_TIME = ("今日", "昨日", "明日", "今週", "先月", "来年", "毎朝", "週末", "午後", "夕方")
JA_PEOPLE = ("私", "先生", "学生", "部長", "友人", "家族", "担当者", "お客様", "社員", "子供")
JA_PLACES = ("会社", "学校", "駅", "図書館", "病院", "公園", "銀行", "会議室", "工場", "店")
JA_OBJECTS = ("資料", "手紙", "報告書", "本", "新聞", "写真", "計画", "予算", "商品", "書類")
JA_VERBS = ("を読みました", "を確認しました", "を送りました", "を準備します", "を作成しました",
             "を受け取りました", "を提出しました", "について話しました", "を調べています", "を届けました")
JA_ADJ = ("新しい", "大切な", "簡単な", "難しい", "便利な", "静かな", "有名な", "重要な", "古い", "小さな")
JA_TOPICS = ("天気", "会議", "予定", "結果", "問題", "方法", "経済", "環境", "技術", "文化")
JA_STATES = ("とても良いです", "少し心配です", "まだ分かりません", "順調に進んでいます", "大きく変わりました",
              "予定通りです", "注目されています", "改善が必要です")


def pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def en_sentence(rng: np.random.Generator) -> str:
    n = int(rng.integers(6, 15))
    words = [pick(rng, EN_WORDS) for _ in range(n)]
    if rng.random() < 0.25:
        words.insert(int(rng.integers(1, n)), str(int(rng.integers(2, 2000))))
    if n > 8 and rng.random() < 0.4:
        k = int(rng.integers(3, n - 3))
        words[k] += ","
    words[0] = words[0].capitalize()
    return " ".join(words) + pick(rng, (".", ".", ".", "?", "!"))


def ja_sentence(rng: np.random.Generator) -> str:
    kind = int(rng.integers(4))
    if kind == 0:
        s = (f"{pick(rng, JA_TIME)}、{pick(rng, JA_PEOPLE)}は{pick(rng, JA_PLACES)}で"
             f"{pick(rng, JA_OBJECTS)}{pick(rng, JA_VERBS)}")
    elif kind == 1:
        s = f"{pick(rng, JA_TOPICS)}の{pick(rng, JA_TOPICS)}は{pick(rng, JA_STATES)}"
    elif kind == 2:
        s = f"{pick(rng, JA_PEOPLE)}が{pick(rng, JA_ADJ)}{pick(rng, JA_OBJECTS)}{pick(rng, JA_VERBS)}"
    else:
        s = f"{pick(rng, JA_PLACES)}の{pick(rng, JA_OBJECTS)}は{int(rng.integers(2, 99))}件あり、{pick(rng, JA_STATES)}"
    return s + "。"


def en_name(rng):
    return f"{pick(rng, EN_FIRST)} {pick(rng, EN_LAST)}"


def en_date(rng):
    return f"{int(rng.integers(2015, 2026))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"


def en_address(rng):
    return f"{int(rng.integers(1, 9999))} {pick(rng, EN_STREETS)} {pick(rng, EN_STREET_TYPES)}"


def en_phone(rng):
    return f"({int(rng.integers(200, 999))}) {int(rng.integers(200, 999))}-{int(rng.integers(0, 10000)):04d}"


def ja_date(rng):
    return f"{int(rng.integers(2015, 2026))}年{int(rng.integers(1, 13))}月{int(rng.integers(1, 29))}日"


def ja_phone(rng):
    return f"0{int(rng.integers(3, 99))}-{int(rng.integers(100, 9999))}-{int(rng.integers(0, 10000)):04d}"


def ja_address(rng):
    return (f"{pick(rng, JA_PREFS)}{pick(rng, JA_TOWNS)}"
            f"{int(rng.integers(1, 9))}-{int(rng.integers(1, 30))}-{int(rng.integers(1, 20))}")


def yen(value: int) -> str:
    return f"{value:,}円"


def form_value(rng: np.random.Generator, label: str, lang: str) -> str:
    if lang == "eng":
        table = {
            "Full name": lambda: en_name(rng), "Date of birth": lambda: en_date(rng),
            "Address": lambda: en_address(rng), "City": lambda: pick(rng, EN_CITIES),
            "Phone": lambda: en_phone(rng), "Date": lambda: en_date(rng),
            "Start date": lambda: en_date(rng), "Amount due": lambda: f"${rng.integers(100, 500000) / 100:,.2f}",
            "Payment method": lambda: pick(rng, EN_PAYMENT), "Department": lambda: pick(rng, EN_SHOP_B),
            "Occupation": lambda: pick(rng, EN_OCCUPATIONS),
            "Postal code": lambda: f"{int(rng.integers(10000, 99999))}",
        }
        def default() -> str:
            return f"{pick(rng, ('AC', 'INV', 'ID', 'PN', 'REF'))}-{int(rng.integers(100000, 9999999))}"
    else:
        table = {
            "氏名": lambda: f"{pick(rng, JA_SURNAMES)} {pick(rng, JA_GIVEN)}",
            "フリガナ": lambda: pick(rng, JA_KANA_NAMES), "生年月日": lambda: ja_date(rng),
            "住所": lambda: ja_address(rng), "電話番号": lambda: ja_phone(rng),
            "会社名": lambda: pick(rng, JA_COMPANIES), "部署": lambda: pick(rng, JA_DEPTS),
            "申請日": lambda: ja_date(rng), "金額": lambda: yen(int(rng.integers(100, 500000))),
            "支払方法": lambda: pick(rng, JA_PAYMENT),
            "郵便番号": lambda: f"{int(rng.integers(100, 999))}-{int(rng.integers(0, 10000)):04d}",
            "備考": lambda: f"{pick(rng, JA_TOPICS)}について{pick(rng, JA_STATES)}",
        }
        def default() -> str:
            return f"{int(rng.integers(100000, 9999999))}"
    return table.get(label, default)()
