import { render } from 'solid-js/web'
import { App } from './app.tsx'
import './styles.css'

const root = document.getElementById('app')
if (!root) throw new Error('index.html has no #app element to mount the UI into')
render(() => <App />, root)
