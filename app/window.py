"""The main window: tabs grouped by modality in a sidebar, device and precision in the toolbar,
the model in use and the last latency in the status bar."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QFont, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QSizePolicy,
    QStackedWidget,
    QWidget,
)

from app.tabs import MODALITIES
from app.tabs.base import TaskTab
from app.worker import Engine, EngineInfo

_DEVICE_NAMES = {"auto": "Auto", "cuda": "CUDA", "mps": "MPS", "cpu": "CPU"}
#: the toolbar's choices; Auto measures which runs fastest with fp32's answers (engine.precision)
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
_PRECISION_NAMES = {"auto": "Auto"}
_TAB = Qt.ItemDataRole.UserRole


class MainWindow(QMainWindow):
    """Owns the tabs; `engine` must be started by the caller once the window is shown."""

    def __init__(self, engine: Engine, settings: QSettings, tab_classes: list[type[TaskTab]]) -> None:
        super().__init__()
        self.engine = engine
        self.settings = settings
        self.setWindowTitle("Task Studio")
        self.resize(1280, 840)
        self._build_toolbar()
        # connected before the tabs connect theirs, so devices are known when tabs start loading
        engine.ready.connect(self._on_ready)

        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.setFixedWidth(210)
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stack = QStackedWidget()
        self._tabs: list[TaskTab] = []
        for modality, heading in MODALITIES.items():
            group = [cls for cls in tab_classes if cls.modality == modality]
            if group:
                self._add_heading(heading)
            for cls in group:
                self._add_tab(cls(engine, settings, self.runtime))
        if not self._tabs:
            empty = QLabel("No task is available: the engine has no task modules yet.")
            empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.stack.addWidget(empty)
        self.nav.currentItemChanged.connect(self._on_nav)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(8, 8, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.nav)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self._build_status_bar()
        self._build_actions()
        self._restore()

    # ----- public -------------------------------------------------------------------------------

    def tabs(self) -> list[TaskTab]:
        return list(self._tabs)

    def tab(self, task: str) -> TaskTab:
        return next(t for t in self._tabs if t.task == task)

    def current_tab(self) -> TaskTab | None:
        widget = self.stack.currentWidget()
        return widget if isinstance(widget, TaskTab) else None

    def select_task(self, task: str) -> None:
        for row in range(self.nav.count()):
            item = self.nav.item(row)
            if item.data(_TAB) == task:
                self.nav.setCurrentItem(item)
                return

    def runtime(self) -> tuple[str, str]:
        """The device and precision the toolbar asks for."""
        return self.device_combo.currentData() or "auto", self.dtype_combo.currentData() or "auto"

    # ----- building -----------------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Runtime")
        bar.setObjectName("runtime")
        bar.setMovable(False)
        bar.setIconSize(QSize(16, 16))
        title = QLabel("Task Studio")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setWeight(QFont.Weight.DemiBold)
        title.setFont(font)
        title.setContentsMargins(10, 0, 0, 0)
        bar.addWidget(title)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        self.device_combo = QComboBox()
        self.device_combo.setToolTip("Where models run; Auto picks CUDA, then MPS, then the CPU")
        self.device_combo.addItem("Auto", "auto")
        self.device_combo.addItem("CPU", "cpu")
        self.dtype_combo = QComboBox()
        self.dtype_combo.setToolTip(
            "Precision of the weights and activations. Auto tries fp32, bf16 (where the processor "
            "has it) and int8 (on the CPU) on the samples when a model loads, and keeps the fastest "
            "whose answers match fp32's; int8 stores the linear layers' weights as 8-bit integers"
        )
        for name in PRECISIONS:
            self.dtype_combo.addItem(_PRECISION_NAMES.get(name, name), name)
        for label, combo in (("Device", self.device_combo), ("Precision", self.dtype_combo)):
            text = QLabel(label)
            text.setContentsMargins(12, 0, 6, 0)
            bar.addWidget(text)
            bar.addWidget(combo)
        end = QWidget()
        end.setFixedWidth(10)
        bar.addWidget(end)
        self.device_combo.currentIndexChanged.connect(self._on_runtime_changed)
        self.dtype_combo.currentIndexChanged.connect(self._on_runtime_changed)

    def _build_status_bar(self) -> None:
        self.model_label = QLabel()
        self.device_label = QLabel()
        self.latency_label = QLabel()
        for label in (self.model_label, self.device_label, self.latency_label):
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)
        self.statusBar().showMessage("Starting the engine…")
        self._refresh_status()

    def _build_actions(self) -> None:
        def action(menu_name: str, text: str, keys: list[QKeySequence], slot: object) -> QAction:
            act = QAction(text, self)
            act.setShortcuts(keys)
            act.triggered.connect(slot)
            if menu_name not in menus:
                menus[menu_name] = self.menuBar().addMenu(menu_name)
            menus[menu_name].addAction(act)
            return act

        menus: dict[str, QMenu] = {}
        key = QKeySequence
        action("&File", "&Open…", [key.StandardKey.Open], lambda: self._on_current("open_file"))
        action("&File", "&Save result as JSON…", [key.StandardKey.Save], lambda: self._on_current("export_json"))
        action("&File", "&Copy result as JSON", [key("Ctrl+Shift+C")], lambda: self._on_current("copy_json"))
        action("&File", "&Quit", [key.StandardKey.Quit], self.close)
        self.run_action = action(
            "&Run", "&Run", [key("Ctrl+Return"), key("Ctrl+Enter")], lambda: self._on_current("run")
        )
        self.cancel_action = action("&Run", "&Cancel", [key("Esc")], lambda: self._on_current("cancel"))

    def _add_heading(self, text: str) -> None:
        item = QListWidgetItem(text.upper())
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        font = item.font()
        font.setPointSizeF(font.pointSizeF() * 0.85)
        font.setWeight(QFont.Weight.DemiBold)
        font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
        item.setFont(font)
        item.setSizeHint(QSize(0, 34))
        self.nav.addItem(item)

    def _add_tab(self, tab: TaskTab) -> None:
        self._tabs.append(tab)
        self.stack.addWidget(tab)
        item = QListWidgetItem(tab.title)
        item.setData(_TAB, tab.task)
        item.setToolTip(tab.blurb)
        self.nav.addItem(item)
        tab.status_changed.connect(self._refresh_status)

    # ----- state --------------------------------------------------------------------------------

    def _restore(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        dtype = self.settings.value("runtime/dtype", "auto", str)
        self.dtype_combo.setCurrentIndex(max(0, self.dtype_combo.findData(dtype)))
        saved = self.settings.value("window/task", "", str)
        tasks = [t.task for t in self._tabs]
        if tasks:
            self.select_task(saved if saved in tasks else tasks[0])

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.sync()
        self.engine.stop()
        super().closeEvent(event)

    @Slot(object)
    def _on_ready(self, info: EngineInfo) -> None:
        wanted = self.settings.value("runtime/device", "auto", str)
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        self.device_combo.addItem(f"Auto ({_DEVICE_NAMES.get(info.devices[0], info.devices[0])})", "auto")
        for device in info.devices:
            self.device_combo.addItem(_DEVICE_NAMES.get(device, device), device)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(wanted)))
        self.device_combo.blockSignals(False)
        self.statusBar().showMessage("Engine ready", 3000)

    def _on_runtime_changed(self) -> None:
        device, dtype = self.runtime()
        self.settings.setValue("runtime/device", device)
        self.settings.setValue("runtime/dtype", dtype)
        for tab in self._tabs:
            tab.runtime_changed()

    def _on_nav(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        task = item.data(_TAB) if item is not None else None
        if task is None:
            return
        tab = self.tab(task)
        self.stack.setCurrentWidget(tab)
        self.settings.setValue("window/task", task)
        self._refresh_status()

    def _on_current(self, method: str) -> None:
        tab = self.current_tab()
        if tab is not None:
            getattr(tab, method)()

    def _refresh_status(self) -> None:
        tab = self.current_tab()
        status = tab.status() if tab is not None else {}
        self.model_label.setText(f"Model: {status['model']}" if status.get("model") else "No model loaded")
        self.device_label.setText(
            f"{status['device'].upper()} · {status['dtype']}" if status.get("device") else ""
        )
        facts = tab.loaded.info if tab is not None and tab.loaded is not None else {}
        notes = [facts.get("precision_note"), facts.get("checked_against_fp32")]
        self.device_label.setToolTip("\n".join(n for n in notes if n))
        latency = status.get("latency_ms")
        self.latency_label.setText(f"Last run: {latency:,.0f} ms" if latency is not None else "")
