"""Everything the bot says, in English and Russian. ``t(lang, key, **params)`` formats one text;
parameters that come from a calendar or a user must already be escaped by the caller."""

from __future__ import annotations

from datetime import date

LANGUAGES = ("en", "ru")

HELP_EN = """\
**Yandex Calendar bot** — write to me in this direct message. Commands:
- `connect <login> <app-password> [<time zone>]` — connect, e.g. `connect ivan@yandex.ru abcdefghijklmnop Europe/Moscow` (or `connect` alone, where buttons are on: the password goes into a dialog)
- `disconnect` — forget your account and everything about it
- `login <login>` / `password <app-password>` / `timezone <zone>` — change one thing, e.g. `timezone Asia/Yekaterinburg`
- `check` — what is connected and set up, e.g. `check`
- `calendars` — your calendars; choose with `calendars 1 3` or `calendars all`
- `today`, `tomorrow`, `week`, `month` — your meetings, e.g. `what's on tomorrow?`
- `<date>` — one day, e.g. `05.12.2026` (also `05.12`, `2026-12-05`)
- `<date> - <date>` — a range of up to 366 days, e.g. `from 01.12.2026 to 15.12.2026`
- `next` — your next meeting
- `meet <date|today|tomorrow> <HH:MM> [<duration>] <title> [with @user …]` — create a meeting with a Telemost room, e.g. `meet tomorrow 15:00 45m Design review with @bob`
- `accept` / `maybe` / `decline` — typed in the thread of an invitation or a reminder, answers it
- `daily <HH:MM> [weekdays]` / `daily off` — morning agenda, e.g. `daily 09:00 weekdays`
- `remind <minutes>…` / `remind off` — reminders before meetings, e.g. `remind 10 1`
- `status on` / `status off` — the "📆 In a meeting" status while you are in one
- `changes on/off`, `responses on/off` — added/cancelled/moved meetings; attendees' answers
- `notifications` / `notifications on [HH:MM]` / `notifications off` — show, defaults, all off
- `language en` / `language ru` — reply language
You need an app password for Yandex Calendar: id.yandex.ru → Security → App passwords → \
"Calendar (CalDAV)". Never post it in a channel."""

HELP_RU = """\
**Бот Яндекс Календаря** — пишите мне в личные сообщения. Команды:
- `подключить <логин> <пароль-приложения> [<часовой пояс>]` — подключиться, например `connect ivan@yandex.ru abcdefghijklmnop Europe/Moscow` (или просто `подключить`, если включены кнопки: пароль вводится в окне)
- `отключить` — забыть аккаунт и всё, что с ним связано
- `login <логин>` / `password <пароль-приложения>` / `timezone <пояс>` — изменить одно, например `timezone Asia/Yekaterinburg`
- `проверка` — что подключено и настроено, например `check`
- `календари` — ваши календари; выбрать: `календари 1 3` или `календари all`
- `сегодня`, `завтра`, `неделя`, `месяц` — ваши встречи, например `что завтра?`
- `<дата>` — один день, например `05.12.2026` (также `05.12`, `2026-12-05`)
- `<дата> - <дата>` — период до 366 дней, например `с 01.12.2026 по 15.12.2026`
- `следующая` — ближайшая встреча
- `встреча <дата|сегодня|завтра> <ЧЧ:ММ> [<длительность>] <название> [с @user …]` — создать встречу с Телемостом, например `встреча 05.12 10:00 1h Планёрка с @bob`
- `принять` / `возможно` / `отклонить` — в ветке приглашения или напоминания: ответ на него
- `daily <ЧЧ:ММ> [weekdays]` / `daily off` — утренняя сводка, например `daily 09:00 weekdays`
- `remind <минуты>…` / `remind off` — напоминания перед встречами, например `remind 10 1`
- `status on` / `status off` — статус «📆 На встрече», пока вы на встрече
- `changes on/off`, `responses on/off` — добавленные/отменённые/перенесённые встречи; ответы участников
- `уведомления` / `notifications on [ЧЧ:ММ]` / `notifications off` — показать, по умолчанию, выключить всё
- `язык en` / `язык ru` — язык ответов
Нужен пароль приложения для Яндекс Календаря: id.yandex.ru → Безопасность → Пароли приложений → \
«Календарь (CalDAV)». Никогда не публикуйте его в канале."""

APP_PASSWORD_HOWTO = {
    "en": "Make an app password at id.yandex.ru → Security → App passwords → \"Calendar (CalDAV)\" "
    "and send `connect <login> <app-password>` here.",
    "ru": "Создайте пароль приложения: id.yandex.ru → Безопасность → Пароли приложений → "
    "«Календарь (CalDAV)» и пришлите сюда `подключить <логин> <пароль-приложения>`.",
}

TEXTS: dict[str, dict[str, str]] = {
    "help": {"en": HELP_EN, "ru": HELP_RU},
    # --- errors: one line, the reason and the right form -----------------------------------
    "error.internal": {
        "en": "Something went wrong on my side; nothing was changed. Please try again in a minute.",
        "ru": "Что-то пошло не так на моей стороне; ничего не изменено. Попробуйте через минуту.",
    },
    "error.unknown_command": {
        "en": "I don't know the command \"{text}\". Send `help` for the list, e.g. `today`.",
        "ru": "Не знаю команду «{text}». Отправьте `помощь` для списка, например `сегодня`.",
    },
    "error.not_connected": {
        "en": "Your Yandex Calendar is not connected yet. "
        "Send `connect <login> <app-password> [<time zone>]` here first.",
        "ru": "Яндекс Календарь ещё не подключён. "
        "Сначала отправьте `подключить <логин> <пароль-приложения> [<часовой пояс>]`.",
    },
    "error.connect_usage": {
        "en": "`connect` needs your login and an app password: "
        "`connect <login> <app-password> [<time zone>]`.",
        "ru": "Для подключения нужны логин и пароль приложения: "
        "`подключить <логин> <пароль-приложения> [<часовой пояс>]`.",
    },
    "error.login_usage": {
        "en": "Give the new login: `login <login>`, e.g. `login ivan@yandex.ru`.",
        "ru": "Укажите новый логин: `login <логин>`, например `login ivan@yandex.ru`.",
    },
    "error.password_usage": {
        "en": "Give the new app password: `password <app-password>` (here, in this direct message).",
        "ru": "Укажите новый пароль приложения: `password <пароль-приложения>` (здесь, в личке).",
    },
    "error.dm_only": {
        "en": "Never post an app password in a channel: revoke that password now at id.yandex.ru "
        "→ Security → App passwords, make a new one and send `{command} …` to me in a direct "
        "message. Nothing was saved.",
        "ru": "Никогда не публикуйте пароль приложения в канале: отзовите этот пароль сейчас на "
        "id.yandex.ru → Безопасность → Пароли приложений, создайте новый и пришлите "
        "`{command} …` мне в личные сообщения. Ничего не сохранено.",
    },
    "error.auth_refused": {
        "en": "Yandex refused the login or app password; nothing was saved. "
        + APP_PASSWORD_HOWTO["en"]
        + " A new app password can take a while to start working.",
        "ru": "Яндекс не принял логин или пароль приложения; ничего не сохранено. "
        + APP_PASSWORD_HOWTO["ru"]
        + " Новый пароль приложения может заработать не сразу.",
    },
    "error.stored_password_refused": {
        "en": "Yandex refuses the stored app password (revoked or expired); your settings are "
        "kept. Send `password <new app-password>` here to fix it.",
        "ru": "Яндекс не принимает сохранённый пароль приложения (отозван или истёк); настройки "
        "сохранены. Пришлите `password <новый пароль-приложения>`, чтобы это исправить.",
    },
    "error.unreachable": {
        "en": "The calendar server did not answer; nothing was changed. Please try again in a "
        "few minutes.",
        "ru": "Сервер календаря не ответил; ничего не изменено. Попробуйте через несколько минут.",
    },
    "error.caldav": {
        "en": "The calendar server answered with an error; nothing was changed. Please try again "
        "later.",
        "ru": "Сервер календаря ответил ошибкой; ничего не изменено. Попробуйте позже.",
    },
    "error.unknown_zone": {
        "en": "\"{value}\" is not a time zone I know. Use an IANA zone: `timezone Europe/Moscow`.",
        "ru": "Не знаю часовой пояс «{value}». Укажите пояс IANA: `timezone Europe/Moscow`.",
    },
    "error.unknown_zone_suggest": {
        "en": "\"{value}\" is not a time zone I know — did you mean `{suggestion}`? "
        "Use `timezone {suggestion}`.",
        "ru": "Не знаю часовой пояс «{value}» — может быть, `{suggestion}`? "
        "Отправьте `timezone {suggestion}`.",
    },
    "error.bad_date": {
        "en": "\"{value}\" is not a date. Use dd.mm.yyyy, e.g. `05.12.2026` (also `05.12` or "
        "`2026-12-05`).",
        "ru": "«{value}» — не дата. Используйте дд.мм.гггг, например `05.12.2026` (или `05.12`, "
        "`2026-12-05`).",
    },
    "error.range_reversed": {
        "en": "The range ends ({last}) before it starts ({first}). Use `<from> - <to>`, e.g. "
        "`01.12.2026 - 15.12.2026`.",
        "ru": "Период заканчивается ({last}) раньше, чем начинается ({first}). Используйте "
        "`<с> - <по>`, например `01.12.2026 - 15.12.2026`.",
    },
    "error.range_too_long": {
        "en": "That range is {days} days; the longest is 366. E.g. `01.12.2026 - 30.11.2027`.",
        "ru": "Период — {days} дн., а можно не больше 366. Например `01.12.2026 - 30.11.2027`.",
    },
    "error.bad_calendar_number": {
        "en": "There is no calendar {value}: you have {count}. Use `calendars 1 3` or "
        "`calendars all`.",
        "ru": "Нет календаря {value}: у вас их {count}. Используйте `календари 1 3` или "
        "`календари all`.",
    },
    "error.no_calendars": {
        "en": "No event calendars were found in this Yandex account; nothing was changed.",
        "ru": "В этом аккаунте Яндекса не найдено календарей событий; ничего не изменено.",
    },
    "error.bad_time": {
        "en": "\"{value}\" is not a time. Use HH:MM, e.g. `daily 09:00` or `daily 09:00 weekdays`.",
        "ru": "«{value}» — не время. Используйте ЧЧ:ММ, например `daily 09:00` или "
        "`daily 09:00 weekdays`.",
    },
    "error.bad_leads": {
        "en": "\"{value}\" is not a number of minutes (0–1440). Use e.g. `remind 10 1` or "
        "`remind off`.",
        "ru": "«{value}» — не число минут (0–1440). Например `remind 10 1` или `remind off`.",
    },
    "error.too_many_leads": {
        "en": "At most 5 reminders per meeting. Use e.g. `remind 30 10 1`.",
        "ru": "Не больше 5 напоминаний на встречу. Например `remind 30 10 1`.",
    },
    "error.on_off": {
        "en": "Say `{command} on` or `{command} off`.",
        "ru": "Отправьте `{command} on` или `{command} off`.",
    },
    "error.bad_language": {
        "en": "I speak English and Russian: `language en` or `language ru`.",
        "ru": "Я говорю по-английски и по-русски: `язык en` или `язык ru`.",
    },
    "error.bad_notifications": {
        "en": "Use `notifications`, `notifications on [HH:MM]` or `notifications off`.",
        "ru": "Используйте `уведомления`, `notifications on [ЧЧ:ММ]` или `notifications off`.",
    },
    # --- connect / account -------------------------------------------------------------------
    "connect.done": {
        "en": "Connected {login}. Time zone: {timezone}. Watching {count} calendar(s): "
        "{names}.\nTurned on: {notifications}.\nSee `help` for everything else.",
        "ru": "Подключён {login}. Часовой пояс: {timezone}. Календарей в работе: {count}: "
        "{names}.\nВключено: {notifications}.\nОстальное — в `помощь`.",
    },
    "connect.post_deleted": {
        "en": "I deleted your message with the password from this chat.",
        "ru": "Я удалил из чата ваше сообщение с паролем.",
    },
    "connect.post_not_deleted": {
        "en": "I could not delete your message with the password: please delete it yourself "
        "(⋯ → Delete).",
        "ru": "Не удалось удалить ваше сообщение с паролем: удалите его сами (⋯ → Удалить).",
    },
    "disconnect.done": {
        "en": "Disconnected. I forgot your login, app password, settings and cached meetings.",
        "ru": "Отключено. Я забыл ваш логин, пароль приложения, настройки и сохранённые встречи.",
    },
    "disconnect.none": {
        "en": "Nothing to disconnect: no Yandex Calendar is connected.",
        "ru": "Отключать нечего: Яндекс Календарь не подключён.",
    },
    "login.done": {
        "en": "Login changed to {login} (checked with Yandex).",
        "ru": "Логин изменён на {login} (проверен в Яндексе).",
    },
    "password.done": {
        "en": "App password updated (checked with Yandex).",
        "ru": "Пароль приложения обновлён (проверен в Яндексе).",
    },
    "timezone.done": {
        "en": "Time zone set to {timezone} (now {time} there).",
        "ru": "Часовой пояс: {timezone} (там сейчас {time}).",
    },
    "timezone.show": {
        "en": "Your time zone is {timezone}. Change it with `timezone <IANA zone>`, e.g. "
        "`timezone Europe/Moscow`.",
        "ru": "Ваш часовой пояс: {timezone}. Изменить: `timezone <пояс IANA>`, например "
        "`timezone Europe/Moscow`.",
    },
    "language.done": {"en": "I will answer in English.", "ru": "Буду отвечать по-русски."},
    "check.body": {
        "en": "Connected as {login}\nTime zone: {timezone}\nLanguage: English\n"
        "Calendars watched: {calendars}\nNotifications: {notifications}\n"
        "Last successful sync: {last_sync}\nLast error: {last_error}\n"
        "Next agenda: {next_agenda}\nNext reminder: {next_reminder}",
        "ru": "Подключён {login}\nЧасовой пояс: {timezone}\nЯзык: русский\n"
        "Календари: {calendars}\nУведомления: {notifications}\n"
        "Последняя успешная синхронизация: {last_sync}\nПоследняя ошибка: {last_error}\n"
        "Следующая сводка: {next_agenda}\nСледующее напоминание: {next_reminder}",
    },
    "check.needs_password": {
        "en": "⚠️ Yandex refuses the stored app password: send `password <new app-password>`.",
        "ru": "⚠️ Яндекс не принимает сохранённый пароль приложения: отправьте "
        "`password <новый пароль-приложения>`.",
    },
    "check.status_refused": {
        "en": "⚠️ Mattermost refused to set your \"📆 In a meeting\" status, so `status` is "
        "off. Ask an admin to give the bot account the System Admin role and to keep custom "
        "statuses on, then send `status on`.",
        "ru": "⚠️ Mattermost отказал в установке статуса «📆 На встрече», поэтому `status` "
        "выключен. Попросите администратора дать аккаунту бота роль System Admin и не "
        "выключать пользовательские статусы, затем отправьте `status on`.",
    },
    "word.never": {"en": "never", "ru": "ещё не было"},
    "word.none": {"en": "none", "ru": "нет"},
    "word.off": {"en": "off", "ru": "выключено"},
    "calendars.header": {
        "en": "Your calendars (✅ watched):",
        "ru": "Ваши календари (✅ в работе):",
    },
    "calendars.footer": {
        "en": "Choose with `calendars 1 3` or `calendars all`.",
        "ru": "Выбрать: `календари 1 3` или `календари all`.",
    },
    "calendars.done": {
        "en": "Now watching: {names}.",
        "ru": "Теперь в работе: {names}.",
    },
    # --- notification settings ---------------------------------------------------------------
    "settings.saved": {"en": "✅ Saved. Now: {summary}.", "ru": "✅ Сохранено. Сейчас: {summary}."},
    "settings.show": {"en": "Notifications: {summary}.", "ru": "Уведомления: {summary}."},
    "notif.daily": {"en": "morning agenda at {time}{days}", "ru": "утренняя сводка в {time}{days}"},
    "notif.weekdays": {"en": " on weekdays", "ru": " по будням"},
    "notif.remind": {"en": "reminders {leads} min before", "ru": "напоминания за {leads} мин"},
    "notif.status": {"en": "\"In a meeting\" status", "ru": "статус «На встрече»"},
    "notif.changes": {"en": "change notices", "ru": "уведомления об изменениях"},
    "notif.responses": {"en": "attendees' answers", "ru": "ответы участников"},
    "notif.none": {"en": "all notifications off", "ru": "все уведомления выключены"},
    "notif.status_refused": {"en": "\"In a meeting\" status refused by Mattermost",
                             "ru": "статус «На встрече» отклонён сервером Mattermost"},
    # --- agenda --------------------------------------------------------------------------------
    "agenda.empty_day": {"en": "No meetings.", "ru": "Встреч нет."},
    "agenda.empty_range": {
        "en": "No meetings from {first} to {last}.",
        "ru": "Нет встреч с {first} по {last}.",
    },
    "agenda.no_next": {
        "en": "No upcoming meetings in the next {days} days.",
        "ru": "В ближайшие {days} дн. встреч нет.",
    },
    "agenda.all_day": {"en": "all day", "ru": "весь день"},
    "agenda.join": {"en": "Join", "ru": "Подключиться"},
    "agenda.cancelled": {"en": "cancelled", "ru": "отменена"},
    "agenda.today": {"en": "Today", "ru": "Сегодня"},
    "agenda.tomorrow": {"en": "Tomorrow", "ru": "Завтра"},
    "agenda.skipped": {
        "en": "({count} event(s) could not be read and are not shown.)",
        "ru": "({count} событий не удалось прочитать, они не показаны.)",
    },
    # --- notices -----------------------------------------------------------------------------
    "reminder.head": {
        "en": "⏰ In {minutes} min: **{title}**, {span}",
        "ru": "⏰ Через {minutes} мин: **{title}**, {span}",
    },
    "agenda.morning": {
        "en": "☀️ **{day}** — your meetings:",
        "ru": "☀️ **{day}** — ваши встречи:",
    },
    "notice.auth": {
        "en": "⚠️ Yandex refuses the stored app password, so I can't see your calendar. Your "
        "settings are kept. Make a new app password (id.yandex.ru → Security → App passwords → "
        "\"Calendar (CalDAV)\") and send `password <new app-password>` here.",
        "ru": "⚠️ Яндекс не принимает сохранённый пароль приложения, и я не вижу ваш календарь. "
        "Настройки сохранены. Создайте новый пароль приложения (id.yandex.ru → Безопасность → "
        "Пароли приложений → «Календарь (CalDAV)») и пришлите `password <новый пароль>`.",
    },
    "notice.status_forbidden": {
        "en": "I can't set your \"📆 In a meeting\" status: the Mattermost server refused "
        "({reason}). Ask an admin to {fix}. I turned `status` off; send `status on` to try again.",
        "ru": "Не могу поставить статус «📆 На встрече»: сервер Mattermost отказал ({reason}). "
        "Попросите администратора {fix}. Я выключил `status`; `status on` — попробовать снова.",
    },
    "status.fix403": {
        "en": "give the bot account the System Admin role (custom statuses of other users need "
        "manage_system)",
        "ru": "дать аккаунту бота роль System Admin (чужие статусы требуют права manage_system)",
    },
    "status.fix501": {
        "en": "turn on custom statuses (System Console → Users and Teams → Enable Custom "
        "Statuses)",
        "ru": "включить пользовательские статусы (System Console → Users and Teams → Enable "
        "Custom Statuses)",
    },
    "change.added": {"en": "New meeting", "ru": "Новая встреча"},
    "change.cancelled": {"en": "Cancelled", "ru": "Отменена"},
    "change.moved": {"en": "Moved", "ru": "Перенесена"},
    "change.updated": {"en": "Changed", "ru": "Изменена"},
    "change.series": {"en": "({count} occurrences)", "ru": "({count} повторений)"},
    "change.invitation": {"en": "Invitation", "ru": "Приглашение"},
    "change.organizer": {"en": "Organizer: {who}", "ru": "Организатор: {who}"},
    "change.place": {"en": "Place: {place}", "ru": "Место: {place}"},
    "change.burst": {"en": "🗓 {count} changes in your calendar:",
                     "ru": "🗓 Изменений в календаре: {count}"},
    "response.burst": {"en": "📨 {count} meetings got new answers:",
                       "ru": "📨 Новые ответы на встречи: {count}"},
    "change.field.title": {"en": "Title: {old} → {new}", "ru": "Название: {old} → {new}"},
    "change.field.location": {"en": "Place: {old} → {new}", "ru": "Место: {old} → {new}"},
    "change.field.link": {"en": "Join link: {old} → {new}", "ru": "Ссылка: {old} → {new}"},
    "change.field.organizer": {"en": "Organizer: {old} → {new}",
                               "ru": "Организатор: {old} → {new}"},
    "response.head": {
        "en": "📨 Answers to **{title}** ({when}):",
        "ru": "📨 Ответы на **{title}** ({when}):",
    },
    "response.ACCEPTED": {"en": "accepted", "ru": "придёт"},
    "response.DECLINED": {"en": "declined", "ru": "отказался(-ась)"},
    "response.TENTATIVE": {"en": "maybe", "ru": "под вопросом"},
    "response.NEEDS-ACTION": {"en": "not answered yet", "ru": "ещё не ответил(а)"},
    "status.text": {"en": "In a meeting", "ru": "На встрече"},
    "partstat.DECLINED": {"en": "you declined", "ru": "вы отказались"},
    "partstat.TENTATIVE": {"en": "you said maybe", "ru": "вы под вопросом"},
    "partstat.NEEDS-ACTION": {"en": "you have not answered", "ru": "вы не ответили"},
    "partstat.DELEGATED": {"en": "you delegated", "ru": "вы передали"},
    # --- buttons and dialogs ---------------------------------------------------------------
    "button.accept": {"en": "Accept", "ru": "Принять"},
    "button.maybe": {"en": "Maybe", "ru": "Возможно"},
    "button.decline": {"en": "Decline", "ru": "Отклонить"},
    "button.snooze": {"en": "Snooze 5 min", "ru": "Напомнить через 5 мин"},
    "button.connect": {"en": "Connect", "ru": "Подключить"},
    "button.password": {"en": "New app password", "ru": "Новый пароль"},
    "connect.button_intro": {
        "en": "Connect your Yandex Calendar with the button below: the app password goes into "
        "a dialog, never into a message.",
        "ru": "Подключите Яндекс Календарь кнопкой ниже: пароль приложения вводится в окне, "
        "а не в сообщении.",
    },
    "password.button_intro": {
        "en": "Give me a new app password with the button below (it never goes into a message).",
        "ru": "Введите новый пароль приложения кнопкой ниже (он не попадёт в сообщения).",
    },
    "connect.dialog_hint": {
        "en": "You need an app password of type \"Calendar (CalDAV)\" from id.yandex.ru → "
        "Security → App passwords.",
        "ru": "Нужен пароль приложения типа «Календарь (CalDAV)»: id.yandex.ru → Безопасность → "
        "Пароли приложений.",
    },
    "password.dialog_hint": {
        "en": "Make a new app password of type \"Calendar (CalDAV)\" at id.yandex.ru → "
        "Security → App passwords.",
        "ru": "Создайте новый пароль приложения типа «Календарь (CalDAV)»: id.yandex.ru → "
        "Безопасность → Пароли приложений.",
    },
    "dialog.title": {"en": "Yandex Calendar", "ru": "Календарь"},
    "dialog.submit": {"en": "Connect", "ru": "Подключить"},
    "dialog.login": {"en": "Login", "ru": "Логин"},
    "dialog.login_help": {"en": "Your Yandex address, e.g. ivan@yandex.ru",
                          "ru": "Ваш адрес в Яндексе, например ivan@yandex.ru"},
    "dialog.password": {"en": "App password", "ru": "Пароль"},
    "dialog.password_help": {
        "en": "An app password of type \"Calendar (CalDAV)\", not your account password",
        "ru": "Пароль приложения «Календарь (CalDAV)», не пароль от аккаунта"},
    "dialog.timezone": {"en": "Time zone", "ru": "Часовой пояс"},
    "dialog.timezone_help": {"en": "e.g. Europe/Moscow; empty: your Mattermost profile's",
                             "ru": "например Europe/Moscow; пусто — как в профиле Mattermost"},
    "dialog.connect_intro": {
        "en": "I check the login with Yandex before storing anything; the password is kept "
        "encrypted.",
        "ru": "Я проверю логин в Яндексе, прежде чем что-то сохранить; пароль хранится "
        "зашифрованным.",
    },
    "dialog.password_intro": {"en": "A new app password for {login}.",
                              "ru": "Новый пароль приложения для {login}."},
    "dialog.required": {"en": "Required.", "ru": "Обязательное поле."},
    "dialog.open_failed": {
        "en": "I could not open the dialog (the button is valid for 3 seconds after the "
        "click); please click again.",
        "ru": "Не удалось открыть окно (кнопка действует 3 секунды после нажатия); нажмите "
        "ещё раз.",
    },
    "action.refused.invalid": {
        "en": "This button is not valid; nothing was changed.",
        "ru": "Эта кнопка недействительна; ничего не изменено.",
    },
    "action.refused.expired": {
        "en": "This button has expired; nothing was changed.",
        "ru": "Срок действия кнопки истёк; ничего не изменено.",
    },
    "action.refused.other_user": {
        "en": "This button belongs to someone else's message; nothing was changed.",
        "ru": "Эта кнопка из чужого сообщения; ничего не изменено.",
    },
    "answer.scope_series": {"en": "the whole series", "ru": "вся серия"},
    "answer.scope_occurrence": {"en": "this occurrence only ({when})",
                                "ru": "только эта встреча ({when})"},
    "answer.done.ACCEPTED": {"en": "✅ You accepted", "ru": "✅ Вы приняли"},
    "answer.done.TENTATIVE": {"en": "❔ You said maybe", "ru": "❔ Вы ответили «возможно»"},
    "answer.done.DECLINED": {"en": "❌ You declined", "ru": "❌ Вы отклонили"},
    "answer.gone": {
        "en": "❌ You declined; Yandex removed the meeting from your calendar.",
        "ru": "❌ Вы отклонили; Яндекс убрал встречу из вашего календаря.",
    },
    "answer.pending": {
        "en": "Sending your answer to Yandex…", "ru": "Отправляю ответ в Яндекс…"},
    "snooze.done": {"en": "💤 I'll remind you again at {time}.",
                    "ru": "💤 Напомню ещё раз в {time}."},
    "error.snooze_too_late": {
        "en": "It starts in less than a minute: too late to snooze.",
        "ru": "До начала меньше минуты: откладывать поздно.",
    },
    "error.snooze_again": {
        "en": "This reminder is snoozed already.", "ru": "Это напоминание уже отложено."},
    "error.answer_where": {
        "en": "Answer in the thread of an invitation or a reminder: reply `accept`, `maybe` "
        "or `decline` there.",
        "ru": "Ответьте в ветке приглашения или напоминания: `принять`, `возможно` или "
        "`отклонить`.",
    },
    "error.answer_which": {
        "en": "That message lists {count} invitations: answer each with its buttons, or in "
        "Yandex Calendar.",
        "ru": "В этом сообщении {count} приглашений: ответьте кнопками у каждого или в "
        "Яндекс Календаре.",
    },
    "error.not_invited": {
        "en": "You are not among the attendees of that meeting, so there is nothing to answer.",
        "ru": "Вас нет среди участников этой встречи, отвечать не на что.",
    },
    "error.meeting_gone": {
        "en": "That meeting is no longer in your calendar; nothing was changed.",
        "ru": "Этой встречи больше нет в вашем календаре; ничего не изменено.",
    },
    "error.write_conflict": {
        "en": "The meeting changed in Yandex while I was writing; please try again.",
        "ru": "Встреча изменилась в Яндексе во время записи; попробуйте ещё раз.",
    },
    "error.write_ignored": {
        "en": "Yandex accepted the change but did not keep it (a read-only calendar?); "
        "nothing was changed.",
        "ru": "Яндекс принял изменение, но не сохранил его (календарь только для чтения?); "
        "ничего не изменено.",
    },
    # --- meet ------------------------------------------------------------------------------
    "error.meet_usage": {
        "en": "`meet` needs a day, a time and a title: `meet tomorrow 15:00 45m Design review "
        "with @bob`.",
        "ru": "Для `встреча` нужны день, время и название: `встреча 05.12 10:00 1h Планёрка с "
        "@bob`.",
    },
    "error.meet_time": {
        "en": "\"{value}\" is not a time: use HH:MM, e.g. `meet tomorrow 15:00 Review`.",
        "ru": "«{value}» — не время: укажите ЧЧ:ММ, например `встреча завтра 15:00 Обзор`.",
    },
    "error.meet_duration": {
        "en": "A meeting lasts at most 24 hours: use e.g. `45m`, `1h` or `1h30m`.",
        "ru": "Встреча длится не больше 24 часов: укажите, например, `45m`, `1h` или `1h30m`.",
    },
    "error.meet_title": {
        "en": "The meeting needs a title: `meet tomorrow 15:00 Design review`.",
        "ru": "Встрече нужно название: `встреча завтра 15:00 Планёрка`.",
    },
    "error.meet_past": {
        "en": "That time has passed already; nothing was created. Pick a later one, e.g. "
        "`meet tomorrow 10:00 Review`.",
        "ru": "Это время уже прошло; ничего не создано. Выберите позже, например `встреча "
        "завтра 10:00 Обзор`.",
    },
    "error.meet_unknown_user": {
        "en": "I don't know the user {value} in Mattermost; nothing was created.",
        "ru": "Не знаю пользователя {value} в Mattermost; ничего не создано.",
    },
    "error.meet_no_email": {
        "en": "I can't see the e-mail address of {value} to invite them; nothing was created.",
        "ru": "Не вижу адрес почты {value}, чтобы пригласить; ничего не создано.",
    },
    "error.meet_dm_only": {
        "en": "Create meetings in a direct message with me: `meet tomorrow 15:00 Review with "
        "@bob`. Nothing was created.",
        "ru": "Встречи создаются в личных сообщениях со мной: `встреча завтра 15:00 Обзор с "
        "@bob`. Ничего не создано.",
    },
    "meet.done": {
        "en": "✅ Created in Yandex Calendar: **{title}**\n{when}\nGuests: {guests}",
        "ru": "✅ Создано в Яндекс Календаре: **{title}**\n{when}\nГости: {guests}",
    },
    "meet.link_later": {
        "en": "The Telemost link is not there yet; I'll post it here when Yandex adds it.",
        "ru": "Ссылки на Телемост пока нет; пришлю её сюда, когда Яндекс её добавит.",
    },
    # --- stats (system admins) -------------------------------------------------------------
    "stats.use.daily": {"en": "agenda", "ru": "сводка"},
    "stats.use.remind": {"en": "reminders", "ru": "напоминания"},
    "stats.use.status": {"en": "status", "ru": "статус"},
    "stats.use.changes": {"en": "changes", "ru": "изменения"},
    "stats.use.responses": {"en": "answers", "ru": "ответы"},
    "stats.body": {
        "en": "**Calendar bot** {version}, up {uptime}\nConnected users: {accounts}\n"
        "Notifications on: {uses}\nNeed a new app password: {needs_password}\n"
        "Poll errors in the last day: {errors}",
        "ru": "**Бот календаря** {version}, работает {uptime}\nПодключено: {accounts}\n"
        "Уведомления: {uses}\nНужен новый пароль: {needs_password}\n"
        "Ошибки опроса за сутки: {errors}",
    },
}

WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "ru": ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"),
}
MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря"),
}


def language_of(locale: str | None) -> str:
    """Mattermost locale ("ru", "en", "pt-br") → one of ours; English by default."""
    return "ru" if (locale or "").lower().startswith("ru") else "en"


def t(lang: str, key: str, **params: object) -> str:
    entry = TEXTS[key]
    template = entry.get(lang) or entry["en"]
    return template.format(**params) if params else template


def day_title(day: date, lang: str, today: date | None = None) -> str:
    """"Friday, 27 November" / "пятница, 27 ноября", with Today/Tomorrow in front."""
    label = f"{WEEKDAYS[lang][day.weekday()]}, {day.day} {MONTHS[lang][day.month - 1]}"
    if today is not None and day.year != today.year:
        label += f" {day.year}"
    if today is not None and day == today:
        return f"{t(lang, 'agenda.today')}, {label}"
    if today is not None and (day - today).days == 1:
        return f"{t(lang, 'agenda.tomorrow')}, {label}"
    return label[0].upper() + label[1:]
