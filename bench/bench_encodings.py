#!/usr/bin/env python
"""How often landfall tells the encoding of an undeclared text file that is not UTF-8 (`landfall.encoding`):
CSV samples of 1 to 200 rows made of each language's words, in the code page its old systems export, decoded
with the detected encoding and compared with the text. Prints right / tried per language and sample size, and
the total; `--misses` lists what a wrong answer was. Seeded: the same samples every run.

    PYTHONPATH=src python bench/bench_encodings.py
    PYTHONPATH=src python bench/bench_encodings.py --misses
"""

from __future__ import annotations

import argparse
import collections
import random
import time

from landfall.encoding import detect_encoding

# language -> (the code page its files come in, words to build rows of)
WORDS = {
    "el": (
        "cp1253",
        "Αθήνα Θεσσαλονίκη Πάτρα Ηράκλειο Λάρισα Βόλος Ιωάννινα Χανιά οδός πλατεία "
        "αριθμός τηλέφωνο πελάτης παραγγελία ποσότητα τιμή σύνολο ημερομηνία κατάστημα "
        "προϊόν",
    ),
    "he": (
        "cp1255",
        "ירושלים תל אביב חיפה באר שבע נתניה אשדוד רחוב מספר טלפון לקוח הזמנה כמות מחיר סכום תאריך חנות מוצר שם משפחה",
    ),
    "ru1251": (
        "cp1251",
        "Москва Санкт-Петербург Новосибирск Екатеринбург Казань улица дом телефон клиент "
        "заказ количество цена сумма дата магазин товар фамилия имя",
    ),
    "rukoi": (
        "koi8_r",
        "Москва Санкт-Петербург Новосибирск Екатеринбург Казань улица дом телефон клиент "
        "заказ количество цена сумма дата магазин товар фамилия имя",
    ),
    "ru866": (
        "cp866",
        "Москва Санкт-Петербург Новосибирск Екатеринбург Казань улица дом телефон клиент "
        "заказ количество цена сумма дата магазин товар фамилия имя",
    ),
    "ar": (
        "cp1256",
        "القاهرة الإسكندرية الجيزة شارع رقم هاتف عميل طلب كمية سعر مجموع تاريخ متجر منتج اسم عائلة",
    ),
    "th": (
        "cp874",
        "กรุงเทพ เชียงใหม่ ภูเก็ต ถนน เลขที่ โทรศัพท์ ลูกค้า คำสั่งซื้อ จำนวน ราคา รวม วันที่ ร้าน สินค้า ชื่อ",
    ),
    "tr": (
        "cp1254",
        "İstanbul Ankara İzmir Bursa Şişli Çankaya Üsküdar sokak numara telefon müşteri "
        "sipariş miktar fiyat toplam tarih mağaza ürün soyadı",
    ),
    "pl": (
        "cp1250",
        "Kraków Łódź Wrocław Poznań Gdańsk ulica numer telefon klient zamówienie ilość "
        "cena suma data sklep produkt nazwisko imię Żółć",
    ),
    "pl-iso": (
        "iso8859_2",
        "Kraków Łódź Wrocław Poznań Gdańsk ulica numer telefon klient zamówienie ilość "
        "cena suma data sklep produkt nazwisko imię Żółć Ślęża Świętochłowice",
    ),
    "el-iso": (
        "iso8859_7",
        "Αθήνα Θεσσαλονίκη Πάτρα Ηράκλειο Άρτα Λάρισα Βόλος Ιωάννινα Χανιά οδός πλατεία "
        "αριθμός τηλέφωνο πελάτης παραγγελία ποσότητα τιμή σύνολο ημερομηνία κατάστημα "
        "προϊόν",
    ),
    "ru-iso": (
        "iso8859_5",
        "Москва Санкт-Петербург Новосибирск Екатеринбург Казань улица дом телефон клиент "
        "заказ количество цена сумма дата магазин товар фамилия имя",
    ),
    "fr": (
        "cp1252",
        "Besançon Orléans Nîmes Fréjus Noël Françoise Chloé Jérôme rue numéro téléphone "
        "client commande quantité prix total date magasin produit nom prénom Hélène "
        "Benoît",
    ),
    "es": (
        "cp1252",
        "Málaga Córdoba León Cádiz Logroño calle número teléfono cliente pedido cantidad "
        "precio total fecha tienda producto apellido nombre José Muñoz",
    ),
    "pt": (
        "cp1252",
        "São Paulo Brasília Belém Goiânia Maceió rua número telefone cliente pedido "
        "quantidade preço total data loja produto sobrenome nome João Conceição",
    ),
    "sv": (
        "cp1252",
        "Göteborg Malmö Västerås Örebro Linköping gata nummer telefon kund beställning "
        "antal pris summa datum butik produkt efternamn förnamn Åsa Björn",
    ),
    "cs": (
        "cp1250",
        "Praha Brno Ostrava Plzeň České Budějovice ulice číslo telefon zákazník "
        "objednávka množství cena součet datum obchod výrobek příjmení jméno Jiří Dvořák",
    ),
    "hu": (
        "cp1250",
        "Budapest Debrecen Szeged Pécs Győr utca szám telefon ügyfél rendelés mennyiség "
        "ár összeg dátum üzlet termék vezetéknév keresztnév Erdős Pál Kőszeg",
    ),
    "de": (
        "cp1252",
        "München Köln Düsseldorf Straße Größe Kunde Bestellung Menge Preis Summe Datum "
        "Geschäft Produkt Nachname Vorname Müller Jürgen",
    ),
    "ja": (
        "shift_jis",
        "東京 大阪 名古屋 札幌 福岡 住所 電話 顧客 注文 数量 価格 合計 日付 店舗 商品 名前 山田 太郎",
    ),
    "zh": (
        "gb18030",
        "北京 上海 广州 深圳 地址 电话 客户 订单 数量 价格 合计 日期 商店 产品 名字 王 李",
    ),
    "tw": (
        "big5",
        "台北 高雄 台中 地址 電話 客戶 訂單 數量 價格 合計 日期 商店 產品 名字 王 李",
    ),
    "ko": (
        "cp949",
        "서울 부산 인천 대구 주소 전화 고객 주문 수량 가격 합계 날짜 상점 제품 이름 김 이 박",
    ),
    "it": (
        "cp1252",
        "Città Perché Già Più Però Università Forlì Cantù Niccolò Lucía caffè società verità Nicolò è là",
    ),
    "nl": (
        "cp1252",
        "café reünie België Curaçao coördinatie één Ruïne Zeeën naïef privé",
    ),
    "da": (
        "cp1252",
        "København Århus Ålborg Søren Jørgensen Næstved Frederiksværk blåbær smørrebrød Ærø",
    ),
    "fr2": (
        "cp1252",
        "à côté déjà être forêt Noël garçon leçon où très élève Molière Hélène Gérard Joël Zoé",
    ),
    "es2": (
        "cp1252",
        "Peña Núñez Ibáñez Muñoz España señor niño año mañana acción Begoña Zúñiga",
    ),
    "de2": (
        "cp1252",
        "Straße Müller Größe Übersee Bäcker Käse Öl für schön Fußgänger Jürgen Sören",
    ),
    "sk": (
        "cp1250",
        "Bratislava Košice Prešov Žilina Nitra Banská Bystrica Trnava ďakujem päť ľudia môj",
    ),
    "hr": (
        "cp1250",
        "Zagreb Split Rijeka Osijek Đakovo Čakovec Šibenik Požega Karlovac ćevapi đak",
    ),
    "cs2": (
        "cp1250",
        "Dvořák Novák Černý Procházka Kučera Veselý Horák Němec Pokorný Marková Růžička",
    ),
    "pl2": (
        "cp1250",
        "Wałęsa Szymańska Wójcik Kowalczyk Woźniak Kamiński Lewandowski Zieliński Dąbrowski Szczęsny",
    ),
    "lt": (
        "cp1257",
        "Vilnius Kaunas Klaipėda Šiauliai Panevėžys Alytus Marijampolė Mažeikiai Jonava Utena Kėdainiai",
    ),
    "lv": (
        "cp1257",
        "Rīga Daugavpils Liepāja Jelgava Jūrmala Ventspils Rēzekne Valmiera Ogre Tukums Cēsis",
    ),
    "et": (
        "cp1257",
        "Tallinn Tartu Pärnu Narva Viljandi Rakvere Võru Jõhvi Kuressaare Haapsalu Põlva",
    ),
    "tr2": (
        "cp1254",
        "Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç Aslan Çetin",
    ),
    "uk": (
        "cp1251",
        "Київ Харків Одеса Дніпро Львів Запоріжжя Кривий Ріг Миколаїв Вінниця Херсон Полтава Чернігів",
    ),
    "bg": (
        "cp1251",
        "София Пловдив Варна Бургас Русе Стара Загора Плевен Сливен Добрич Шумен Перник",
    ),
    "el2": (
        "cp1253",
        "Παπαδόπουλος Παπαδοπούλου Γεωργίου Οικονόμου Βασιλείου Νικολάου Δημητρίου Ιωάννου",
    ),
    "he2": (
        "cp1255",
        "כהן לוי מזרחי פרץ ביטון דהן אברהם פרידמן מלכה אזולאי",
    ),
    "ar2": (
        "cp1256",
        "محمد أحمد علي حسن حسين عبدالله خالد عمر يوسف إبراهيم",
    ),
}

ROWS = (1, 2, 3, 5, 10, 20, 50, 200)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5, help="samples per language and size")
    ap.add_argument("--misses", action="store_true", help="also list the wrong answers")
    args = ap.parse_args()
    rng = random.Random(1)
    right = tried = 0
    spent = 0.0
    for lang, (codec, words) in WORDS.items():
        ws = words.split()
        cells, misses = [], collections.Counter()
        for rows in ROWS:
            ok = 0
            for _ in range(args.trials):
                lines = [
                    f"{i},{rng.choice(ws)},{rng.choice(ws)},{rng.choice(ws)} {rng.choice(ws)}" for i in range(rows)
                ]
                text = "id,name,city,note\n" + "\n".join(lines) + "\n"
                data = text.encode(codec)
                t0 = time.perf_counter()
                found = detect_encoding(data).encoding
                spent += time.perf_counter() - t0
                try:
                    good = data.decode(found) == text
                except UnicodeDecodeError:
                    good = False
                ok += good
                misses[found] += not good
            cells.append(f"{rows}:{ok}")
            right += ok
            tried += args.trials
        wrong = {k: v for k, v in misses.items() if v}
        print(f"{lang:7} {codec:10} {' '.join(cells)}" + (f"   misread as {wrong}" if args.misses and wrong else ""))
    print(f"right on {right} of {tried} samples; {spent / tried * 1000:.2f} ms a sample")


if __name__ == "__main__":
    main()
