// A stand-in for Telegram.WebApp inside headless Chromium. The test fills __FAKE_TG__ with the initData
// (signed with the test bot token), the user and the theme. BackButton and MainButton are drawn as page
// elements (#tg-back, #tg-main) so screenshots show them and the test can press them like a user.
(() => {
  const config = window.__FAKE_TG__;
  const draw = () => {
    if (!document.body) return;
    let bar = document.getElementById("tg-main");
    if (!bar) {
      bar = document.createElement("button");
      bar.id = "tg-main";
      bar.style.cssText = "position:fixed;left:0;right:0;bottom:0;height:52px;border:none;font:600 16px system-ui;z-index:99";
      bar.addEventListener("click", () => MainButton.isActive && MainButton.callbacks.forEach((cb) => cb()));
      document.body.append(bar);
    }
    bar.hidden = !MainButton.isVisible;
    bar.textContent = MainButton.isProgressVisible ? "…" : MainButton.text;
    bar.dataset.active = String(MainButton.isActive);
    bar.style.background = MainButton.isActive ? config.theme.button_color : config.theme.hint_color;
    bar.style.color = config.theme.button_text_color;
    let back = document.getElementById("tg-back");
    if (!back) {
      back = document.createElement("button");
      back.id = "tg-back";
      back.textContent = "‹ Назад (Telegram)";
      back.style.cssText = "position:fixed;top:0;right:0;z-index:99;border:none;padding:6px 10px;font:14px system-ui";
      back.addEventListener("click", () => BackButton.callbacks.forEach((cb) => cb()));
      document.body.append(back);
    }
    back.hidden = !BackButton.isVisible;
  };
  const button = (extra) => ({ isVisible: false, callbacks: [], onClick(cb) { this.callbacks.push(cb); },
    offClick(cb) { this.callbacks = this.callbacks.filter((c) => c !== cb); },
    show() { this.isVisible = true; draw(); }, hide() { this.isVisible = false; draw(); }, ...extra });
  const BackButton = button({});
  const MainButton = button({
    text: "", isActive: true, isProgressVisible: false,
    setText(text) { this.text = text; draw(); }, enable() { this.isActive = true; draw(); },
    disable() { this.isActive = false; draw(); }, showProgress() { this.isProgressVisible = true; draw(); },
    hideProgress() { this.isProgressVisible = false; draw(); }, setParams(p) { Object.assign(this, p); draw(); },
  });
  window.__opened = [];
  window.__haptics = [];
  window.__closingConfirmation = false;
  window.Telegram = { WebApp: {
    initData: config.initData, initDataUnsafe: { user: config.user }, version: "8.0", platform: "tdesktop",
    colorScheme: config.colorScheme, themeParams: config.theme,
    ready() {}, expand() {}, close() { window.__closed = true; }, onEvent() {}, offEvent() {}, setHeaderColor() {},
    isVersionAtLeast(version) { return Number(version) <= 8.0; },
    enableClosingConfirmation() { window.__closingConfirmation = true; },
    disableClosingConfirmation() { window.__closingConfirmation = false; },
    // Like Telegram: the user agrees, the phone comes back in responseUnsafe (config.contactPhone).
    requestContact(callback) {
      const phone = config.contactPhone;
      setTimeout(() => callback(Boolean(phone), phone ? { status: "sent", responseUnsafe: { contact: { phone_number: phone } } } : { status: "cancelled" }));
    },
    openLink(url) { window.__opened.push(url); },
    HapticFeedback: { notificationOccurred(kind) { window.__haptics.push(kind); }, impactOccurred() {}, selectionChanged() {} },
    BackButton, MainButton,
  } };
  document.addEventListener("DOMContentLoaded", draw);
})();
